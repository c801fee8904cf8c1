"""Incremental audio encoders: float32 chunks in, bytes out as soon as a format allows.

Which formats stream (bytes leave after each sentence):
- ``wav``: a header with unknown size (0xFFFFFFFF, like OpenAI's), then PCM16 per sentence.
- ``pcm``: raw PCM16 little-endian mono at the voice's rate, per sentence.
- ``mp3`` (LAME, 64 kbit/s) and ``opus`` (Ogg/Opus, 48 kHz, 32 kbit/s): muxed by PyAV into a write-only sink
  that is drained after each sentence; the encoders' look-ahead (a few tens of ms) leaves with the next one.
- ``flac`` does NOT stream: it is encoded once the whole text is synthesised, because a FLAC stream written
  without seeking back has no total length in its header, and libsndfile (``soundfile``) refuses such files.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Protocol, cast

import numpy as np

from service_common.audio import encode_audio, to_pcm16, wav_header

if TYPE_CHECKING:
    import av.audio.stream
    import av.container

ResponseFormat = Literal["wav", "pcm", "flac", "mp3", "opus"]

OPUS_SAMPLE_RATE_HZ = 48_000  # the rate Ogg/Opus decoders output, whatever the input rate
MP3_BIT_RATE = 64_000  # transparent enough for 16-24 kHz mono speech
OPUS_BIT_RATE = 32_000  # Opus is near-transparent for mono speech at 24-32 kbit/s
OGG_PAGE_DURATION_US = 100_000  # the Ogg muxer otherwise holds 1 s of packets before writing a page


class AudioEncoder(Protocol):
    """Turns a sequence of float32 mono chunks (at the voice's rate) into one encoded byte stream."""

    streams: bool
    """True when ``encode`` returns bytes per chunk; False when everything comes from ``finish``."""
    sample_rate_hz: int
    """Rate (Hz) of the encoded audio (the voice's, except opus: 48 000)."""

    def start(self) -> bytes:
        """Bytes that precede the audio (a header), possibly empty."""
        ...

    def encode(self, samples: np.ndarray) -> bytes:
        """Encode one chunk; returns the bytes ready so far (possibly empty)."""
        ...

    def finish(self) -> bytes:
        """Flush everything still buffered; the encoder cannot be used afterwards."""
        ...

    def close(self) -> None:
        """Release resources without flushing (idempotent; after ``finish`` or when the client went away)."""
        ...


class PcmEncoder:
    """Raw little-endian PCM16 mono; no header."""

    streams = True

    def __init__(self, sample_rate_hz: int) -> None:
        self.sample_rate_hz = sample_rate_hz

    def start(self) -> bytes:
        return b""

    def encode(self, samples: np.ndarray) -> bytes:
        return to_pcm16(samples)

    def finish(self) -> bytes:
        return b""

    def close(self) -> None:
        pass


class WavEncoder(PcmEncoder):
    """PCM16 mono WAV whose header states an unknown length, so it can be sent before the audio exists."""

    def start(self) -> bytes:
        return wav_header(self.sample_rate_hz)


class WholeFileEncoder:
    """Collects every chunk and encodes one complete file at the end (``service_common.audio.encode_audio``)."""

    streams = False

    def __init__(self, sample_rate_hz: int, response_format: str) -> None:
        self.sample_rate_hz = sample_rate_hz
        self._format = response_format
        self._chunks: list[np.ndarray] = []

    def start(self) -> bytes:
        return b""

    def encode(self, samples: np.ndarray) -> bytes:
        self._chunks.append(samples)
        return b""

    def finish(self) -> bytes:
        samples = np.concatenate(self._chunks) if self._chunks else np.zeros(0, dtype=np.float32)
        self._chunks.clear()
        return encode_audio(samples, self.sample_rate_hz, self._format)

    def close(self) -> None:
        self._chunks.clear()


class _Sink:
    """Write-only file object for PyAV. Having no ``seek`` makes FFmpeg treat the output as a stream."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def drain(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data


class ContainerEncoder:
    """mp3 or Ogg/Opus through PyAV (FFmpeg's libmp3lame / libopus), drained after every chunk.

    PyAV's encoder converts sample format and rate itself (flt -> s16/s32p, and to 48 kHz for Opus).
    """

    streams = True

    def __init__(self, input_rate_hz: int, response_format: Literal["mp3", "opus"]) -> None:
        import av

        self._av = av
        self._input_rate_hz = input_rate_hz
        self._sink = _Sink()
        if response_format == "mp3":
            codec, container_format, options = "libmp3lame", "mp3", {}
            self.sample_rate_hz = _nearest_supported_rate(codec, input_rate_hz)
            bit_rate = MP3_BIT_RATE
        else:
            codec, container_format = "libopus", "ogg"
            options = {"page_duration": str(OGG_PAGE_DURATION_US)}
            self.sample_rate_hz = OPUS_SAMPLE_RATE_HZ
            bit_rate = OPUS_BIT_RATE
        self._container: av.container.OutputContainer = av.open(
            self._sink, mode="w", format=container_format, options=options
        )
        self._stream = cast(
            "av.audio.stream.AudioStream",
            self._container.add_stream(codec, rate=self.sample_rate_hz, layout="mono"),
        )
        self._stream.bit_rate = bit_rate
        self._closed = False

    def start(self) -> bytes:
        return b""

    def encode(self, samples: np.ndarray) -> bytes:
        frame = self._av.AudioFrame.from_ndarray(
            np.ascontiguousarray(samples, dtype=np.float32).reshape(1, -1), format="flt", layout="mono"
        )
        frame.sample_rate = self._input_rate_hz
        self._container.mux(self._stream.encode(frame))
        return self._sink.drain()

    def finish(self) -> bytes:
        self._container.mux(self._stream.encode(None))
        self.close()
        return self._sink.drain()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._container.close()


def _nearest_supported_rate(codec_name: str, rate_hz: int) -> int:
    import av

    rates = sorted(av.codec.Codec(codec_name, "w").audio_rates or ())
    if not rates or rate_hz in rates:
        return rate_hz
    higher = [rate for rate in rates if rate >= rate_hz]
    return higher[0] if higher else rates[-1]


def make_encoder(response_format: ResponseFormat, sample_rate_hz: int) -> AudioEncoder:
    """Encoder for ``response_format`` fed with float32 mono chunks at ``sample_rate_hz``."""
    if response_format == "wav":
        return WavEncoder(sample_rate_hz)
    if response_format == "pcm":
        return PcmEncoder(sample_rate_hz)
    if response_format in ("mp3", "opus"):
        return ContainerEncoder(sample_rate_hz, response_format)
    if response_format == "flac":
        return WholeFileEncoder(sample_rate_hz, "flac")
    raise ValueError(f"unknown response format {response_format!r}")
