"""Audio decoding (PyAV) and encoding (soundfile), independent of any model library.

Samples inside the services are float32 mono in [-1, 1]; sample rates are in Hz.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Generator
from typing import TYPE_CHECKING, BinaryIO

import numpy as np

from .errors import AudioDecodeError, EmptyInput

if TYPE_CHECKING:
    import av

WHISPER_SAMPLE_RATE_HZ = 16_000

MEDIA_TYPES = {
    "wav": "audio/wav",
    "pcm": "audio/pcm",
    "flac": "audio/flac",
    "mp3": "audio/mpeg",
    "opus": "audio/ogg",
}


def decode_audio(data: bytes, sample_rate_hz: int = WHISPER_SAMPLE_RATE_HZ) -> np.ndarray:
    """Decode any container/codec FFmpeg knows (wav, flac, mp3, ogg/opus, webm, m4a) to mono float32.

    Returns a 1-D float32 array in [-1, 1] resampled to ``sample_rate_hz`` (all channels averaged).
    Raises EmptyInput for zero bytes and AudioDecodeError when the bytes are not decodable audio or
    contain no audio stream.
    """
    if not data:
        raise EmptyInput("the uploaded file is empty", param="file")
    chunks = list(iter_decoded_audio(io.BytesIO(data), sample_rate_hz))
    return np.concatenate(chunks).astype(np.float32, copy=False)


def iter_decoded_audio(
    file: BinaryIO, sample_rate_hz: int = WHISPER_SAMPLE_RATE_HZ
) -> Generator[np.ndarray, None, None]:
    """``decode_audio`` piece by piece, for recordings too long to hold decoded: read ``file`` (any readable,
    seekable binary file: a spooled upload, an open file) as it goes and yield 1-D float32 arrays in [-1, 1] at
    ``sample_rate_hz``, mono, in order, each as long as one decoded frame (a few ms to about 0.1 s).

    Memory stays that of one frame whatever the length. Raises AudioDecodeError (while iterating) when the file is
    not decodable audio, has no audio stream, or yields no frame at all; samples yielded before a failure stay valid.
    Closing the iterator early closes the container.
    """
    import av  # local: the LLM service does not install PyAV

    decoded_any = False
    try:
        with av.open(file, mode="r", metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise AudioDecodeError("the file has no audio stream", param="file")
            stream = container.streams.audio[0]
            # float at the target rate, channels kept: averaging them here is an exact mean, whereas FFmpeg's own
            # downmix scales each channel by 1/sqrt(2) and can clip loud stereo. Packed (interleaved), not planar:
            # PyAV reads past the end of a planar frame with more than 8 channels and crashes the process.
            resampler = av.AudioResampler(format="flt", rate=sample_rate_hz)
            for frame in container.decode(stream):
                frame.pts = None  # let the resampler keep time; broken timestamps in browser webm confuse it
                for out in resampler.resample(frame):
                    decoded_any = True
                    yield _clean(_mono(out))
            for out in resampler.resample(None):
                decoded_any = True
                yield _clean(_mono(out))
    except AudioDecodeError:
        raise
    except (av.FFmpegError, ValueError, IndexError, UnicodeDecodeError) as err:
        raise AudioDecodeError(f"could not decode the audio: {err}", param="file") from err
    if not decoded_any:
        raise AudioDecodeError("the file contains no decodable audio frames", param="file")


def _clean(samples: np.ndarray) -> np.ndarray:
    """float32, finite and in [-1, 1]: float WAVs can carry NaN or infinity, which make Whisper loop for the whole
    window (and the VAD hear speech)."""
    samples = np.nan_to_num(samples.astype(np.float32, copy=False), nan=0.0, posinf=1.0, neginf=-1.0)
    return np.clip(samples, -1.0, 1.0)


def _mono(frame: av.AudioFrame) -> np.ndarray:
    """A packed float frame (samples interleaved, shape ``(1, n * channels)``) -> the channels' mean, shape ``(n,)``."""
    return frame.to_ndarray().reshape(-1, frame.layout.nb_channels).mean(axis=1)


def to_pcm16(samples: np.ndarray) -> bytes:
    """float32 samples in [-1, 1] -> little-endian signed 16-bit PCM bytes."""
    clipped = np.clip(samples, -1.0, 1.0)
    return (clipped * 32767.0).astype("<i2").tobytes()


def wav_header(sample_rate_hz: int, channels: int = 1, data_bytes: int | None = None) -> bytes:
    """RIFF/WAVE header for 16-bit PCM.

    With ``data_bytes=None`` the sizes are set to 0xFFFFFFFF, the convention for a stream whose length is
    not known yet (what OpenAI's speech endpoint sends); decoders read until the end of the stream.
    """
    unknown = 0xFFFFFFFF
    data_size = unknown if data_bytes is None else data_bytes
    riff_size = unknown if data_bytes is None else 36 + data_bytes
    block_align = channels * 2
    return (
        b"RIFF"
        + struct.pack("<I", riff_size)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, channels, sample_rate_hz, sample_rate_hz * block_align, block_align, 16)
        + b"data"
        + struct.pack("<I", data_size)
    )


def encode_audio(samples: np.ndarray, sample_rate_hz: int, response_format: str) -> bytes:
    """Encode float32 mono samples in [-1, 1] as a whole 16-bit file: ``wav``, ``pcm`` (raw) or ``flac``.

    The TTS service streams mp3 and opus with PyAV (its ``encoding`` module); FLAC needs the whole audio first
    (libsndfile, bundled with the soundfile wheel, writes its total length into the header). Raises ValueError for
    another format.
    """
    if response_format == "pcm":
        return to_pcm16(samples)
    if response_format == "wav":
        pcm = to_pcm16(samples)
        return wav_header(sample_rate_hz, data_bytes=len(pcm)) + pcm
    if response_format != "flac":
        raise ValueError(f"cannot encode {response_format!r} in one piece; use wav, pcm or flac")
    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, samples, sample_rate_hz, format="FLAC", subtype="PCM_16")
    return buffer.getvalue()
