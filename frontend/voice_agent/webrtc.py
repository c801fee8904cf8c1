"""The page's WebRTC transport (streamlit-webrtc): the browser's microphone into the engine, the reply back out.

Only glue, no turn logic. streamlit-webrtc (aiortc) runs the peer connection on Streamlit's own event loop:
- ``Microphone`` is the callback of ``streamlit_webrtc.create_audio_sink_track``: every 20 ms frame the browser
  sends (48 kHz stereo s16 after aiortc's Opus decoder), resampled to 16 kHz mono PCM16 and handed to the engine's
  ``push_pcm``, which only enqueues (the callback runs on the event loop that serves every session of the page).
- ``Speaker`` is the engine's ``AudioOutput`` over ``streamlit_webrtc.create_pcm_audio_source_track``: reply PCM
  at the TTS voice's rate, resampled to the track's 48 kHz and queued; the track plays the queue in real time.
- ``rtc_configuration`` is the ICE configuration for both ends, always explicit (see its docstring).

Resampling is PyAV's (``av.AudioResampler``, FFmpeg's libswresample), the library aiortc already decodes with.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import av
import numpy as np
from streamlit_webrtc import PcmAudioSource

from .config import FrontendSettings

MICROPHONE_RATE_HZ = 16_000
"""The engine's input: 16 kHz mono PCM16 (what Silero VAD, Smart Turn and Whisper take)."""
SPEAKER_RATE_HZ = 48_000
"""The reply track's sample rate: Opus's own, so aiortc's encoder does not resample again."""


def rtc_configuration(settings: FrontendSettings) -> dict[str, Any]:
    """The RTCConfiguration for ``webrtc_streamer(rtc_configuration=...)``: ``{"iceServers": [...]}``.

    Always explicit: without ``iceServers`` streamlit-webrtc fills them in by itself, fetching TURN credentials
    from a provider when ``HF_TOKEN``, ``TWILIO_*`` or ``CLOUDFLARE_TURN_*`` are set and asking a public STUN
    server otherwise. The default, ``[]``, gathers host candidates only: enough when the browser and the page
    share a machine or a LAN (the machine needs an interface other than loopback). ``FRONTEND_ICE_SERVERS`` adds
    STUN/TURN servers for a browser behind NAT.
    """
    return {"iceServers": [server.model_dump(exclude_none=True) for server in settings.ice_servers]}


class Microphone:
    """The sink track's callback: browser audio frames -> 16 kHz mono PCM16 bytes -> ``push_pcm``.

    ``push_pcm`` (the engine's, thread-safe and quick) may be swapped or set to None at any time: with None the
    frames are dropped (no conversation running). Runs on Streamlit's event loop, so it only resamples (about
    50 us per 20 ms frame on a 2-core machine) and enqueues. Any input layout and rate is taken; a change of either
    (a new stream) starts a new resampler.
    """

    def __init__(self, push_pcm: Callable[[bytes], None] | None = None) -> None:
        self.push_pcm = push_pcm
        self.frames = 0
        """Frames received, dropped ones included."""
        self._resampler: av.AudioResampler | None = None
        self._input: tuple[str, str, int] | None = None

    def __call__(self, frame: av.AudioFrame) -> None:
        self.frames += 1
        push_pcm = self.push_pcm
        if push_pcm is None:
            return
        pcm16 = b"".join(out.to_ndarray().tobytes() for out in self._resample(frame))
        if pcm16:
            push_pcm(pcm16)

    def reset(self) -> None:
        """Forget the resampler's state (its few buffered samples belong to a stream that has ended)."""
        self._resampler, self._input = None, None

    def _resample(self, frame: av.AudioFrame) -> list[av.AudioFrame]:
        shape = (frame.format.name, frame.layout.name, frame.sample_rate)
        if self._resampler is None or shape != self._input:
            self._resampler = av.AudioResampler(format="s16", layout="mono", rate=MICROPHONE_RATE_HZ)
            self._input = shape
        return self._resampler.resample(frame)


class Speaker:
    """The engine's ``AudioOutput`` over a streamlit-webrtc ``PcmAudioSource`` at ``SPEAKER_RATE_HZ``.

    ``push(pcm16, sample_rate_hz)`` takes signed 16-bit little-endian mono PCM at any rate (Piper's voices speak
    at 22050 Hz), resamples it to 48 kHz with one resampler per input rate (kept between pushes, so pieces of
    one reply join without clicks) and queues it; ``clear()`` drops what is queued and not yet played (barge-in).
    Both are thread-safe and quick (engine threads call them). A resampler holds back under a millisecond of
    audio until the next push; ``clear()`` drops that too.
    """

    def __init__(self, source: PcmAudioSource) -> None:
        _check_rate(source)
        self.source = source
        self._resamplers: dict[int, av.AudioResampler] = {}
        self._lock = threading.Lock()

    def use(self, source: PcmAudioSource) -> None:
        """Play into ``source`` from now on (a new stream brought a new reply track); the old one's queue stays."""
        _check_rate(source)
        with self._lock:
            self._resamplers.clear()
            self.source = source

    def push(self, pcm16: bytes, sample_rate_hz: int) -> None:
        samples = np.frombuffer(pcm16, dtype="<i2")
        if samples.size == 0:
            return
        if sample_rate_hz == SPEAKER_RATE_HZ:
            with self._lock:
                self.source.push(samples)
            return
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = sample_rate_hz
        with self._lock:
            resampler = self._resamplers.get(sample_rate_hz)
            if resampler is None:
                resampler = av.AudioResampler(format="s16", layout="mono", rate=SPEAKER_RATE_HZ)
                self._resamplers[sample_rate_hz] = resampler
            for out in resampler.resample(frame):
                self.source.push(np.asarray(out.to_ndarray()[0], dtype=np.int16))

    def clear(self) -> None:
        with self._lock:
            self._resamplers.clear()
            self.source.clear()


def _check_rate(source: PcmAudioSource) -> None:
    if source.sample_rate != SPEAKER_RATE_HZ:
        raise ValueError(f"the reply track must run at {SPEAKER_RATE_HZ} Hz, not {source.sample_rate} Hz")
