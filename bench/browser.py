"""The page's hands-free mode in a real browser: headless Chromium talks to it through a fake microphone file and
the reply is measured where a person hears it. Shared by ``tests/e2e/test_handsfree.py`` and ``bench.handsfree``.

Three parts:

1. **Microphone files** (``MicrophoneBuilder``): real recordings (``bench.corpus`` clips, several speakers) laid out
   in one WAV with silence between them, a clip split at a quiet point between two words for a mid-sentence pause,
   and an utterance that starts while the previous reply plays (barge-in). Chromium plays the file once as the
   microphone (``--use-file-for-fake-audio-capture=FILE%noloop``), from the moment the page opens the microphone.
2. **A run** (``run_sessions``): everything happens inside a private network namespace (``bench.netns``; WebRTC
   needs a non-loopback interface, and no test traffic may leave the machine): the three services
   (``bench.processes``), the page (``streamlit run frontend/app.py``) and one Chromium process per session, driven
   by Playwright. Sessions of one phase run at the same time; phases run one after another against the same
   services, each with a fresh page process. In every page an init script wraps ``getUserMedia`` and, from the
   moment the microphone opens, measures the RMS level of the microphone stream and of the reply's remote WebRTC
   track (the streamlit-webrtc component's ``<audio>`` element) every 10.7 ms in an AudioWorklet, stamped on the
   ``Date.now()`` clock; it also records the page's hidden hands-free status and the connection's state. At the
   end the page's finished turns (chat messages and the ``handsfree-turn`` elements with the engine's per-turn
   timings) are read. CPU seconds of the page's process, of each service and of the browsers are taken over each
   phase, with what the rest of the machine used meanwhile. Raw results, logs and screenshots are kept under
   ``artifacts/handsfree/``.
3. **Analysis** (``analyze_session``), from those level series only (the WAV's layout only says which stretch of
   microphone sound is which utterance): end of user speech = the microphone level falling and staying quiet for
   ``MIC_QUIET_MS``; first reply sound = the remote level rising after it; barge-in silence = the user's onset
   while the reply is loud -> the remote level quiet for ``SILENCE_HOLD_MS``.

The level detectors are kept here rather than taken from a library because they are a few comparisons on a series
that the browser produced; a VAD would answer a different question (is it speech?) than the one measured (when
does a listener hear sound start or stop?).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import shutil
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import soundfile as sf

from . import netns
from .corpus import Clip
from .processes import REPO_ROOT, VENVS, ReadyProcess, free_port, start_services, stop_all

logger = logging.getLogger(__name__)

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = REPO_ROOT / "artifacts" / "handsfree"
FRONTEND_PYTHON = VENVS / "frontend" / "bin" / "python"
CHROMIUM_FLAGS = (
    "--no-sandbox",
    "--use-fake-ui-for-media-stream",  # grant the microphone without a prompt
    "--use-fake-device-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",  # the reply's <audio> plays without a click
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-background-timer-throttling",  # the status and connection samplers keep their pace
    "--disable-renderer-backgrounding",
)
SAMPLE_RATE_HZ = 16_000
"""Rate of the microphone files: the clips' own; Chromium resamples the file to its 48 kHz capture itself."""

MIC_THRESHOLD = 0.02
"""Microphone RMS (full scale 1.0, 10.7 ms window, after Chromium's echo canceller, noise suppressor and gain
control) above which the user is making sound. The clips are levelled to ``SPEECH_RMS`` first."""
MIC_QUIET_MS = 300
"""The microphone counts as fallen silent once below ``MIC_THRESHOLD`` this long (shorter gaps are within words)."""
REMOTE_THRESHOLD = 0.01
"""Reply track RMS above which the listener hears the reply."""
SILENCE_HOLD_MS = 600
"""After a barge-in the reply counts as silenced once the remote track stays quiet this long."""
REPLY_GAP_MS = 1500
"""Reply sound separated by less than this belongs to one reply (pauses between sentences, a late TTS piece)."""
SPEECH_RMS = 0.1
"""Each clip is scaled so that its loud 20 ms frames (90th percentile of RMS) reach this RMS, at most to a peak of
0.9: speakers at one level, as a microphone's gain control would have them."""

# ---------------------------------------------------------------------------------------------------------------
# 1. microphone files


@dataclass(frozen=True)
class Utterance:
    """One stretch of user speech in a microphone file; times in seconds from the file's start.

    ``start_s``/``end_s`` bound the speech (the clip's own quiet edges trimmed); ``pauses`` are silent gaps
    inserted inside it (a mid-sentence pause, (start_s, end_s) each); ``barge_in`` is true for an utterance
    placed to start while the previous utterance's reply plays.
    """

    clip: str
    speaker: str
    transcript: str
    start_s: float
    end_s: float
    pauses: tuple[tuple[float, float], ...] = ()
    barge_in: bool = False


@dataclass(frozen=True)
class MicrophoneFile:
    """A WAV (16 kHz mono PCM16) that Chromium plays once as the microphone, and what is said in it, when."""

    path: Path
    duration_s: float
    utterances: tuple[Utterance, ...]

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "path": str(self.path)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MicrophoneFile:
        utterances = tuple(
            Utterance(**{**u, "pauses": tuple(tuple(p) for p in u["pauses"])}) for u in data["utterances"]
        )
        return cls(Path(data["path"]), data["duration_s"], utterances)


def _frame_rms(samples: np.ndarray, frame: int) -> np.ndarray:
    usable = samples[: len(samples) // frame * frame].reshape(-1, frame)
    return np.asarray(np.sqrt(np.mean(usable.astype(np.float64) ** 2, axis=1)))


def speech_bounds(samples: np.ndarray, rate_hz: int = SAMPLE_RATE_HZ) -> tuple[float, float]:
    """First and last 20 ms frame (s) louder than -30 dB below the clip's loud frames: where its speech is."""
    rms = _frame_rms(samples, rate_hz // 50)
    loud = np.flatnonzero(rms > np.percentile(rms, 90) * 10 ** (-30 / 20))
    return float(loud[0]) / 50, float(loud[-1] + 1) / 50


def quietest_point(samples: np.ndarray, near_s: float, within_s: float = 0.15, rate_hz: int = SAMPLE_RATE_HZ) -> int:
    """The sample index of the quietest 20 ms within ``within_s`` of ``near_s``: a gap between two words."""
    frame = rate_hz // 50
    first = max(0, int((near_s - within_s) * rate_hz))
    rms = _frame_rms(samples[first : int((near_s + within_s) * rate_hz)], frame)
    return first + int(np.argmin(rms)) * frame + frame // 2


def at_speech_level(samples: np.ndarray) -> np.ndarray:
    """``samples`` (float) scaled so that the loud frames reach ``SPEECH_RMS``, the peak at most 0.9."""
    loud_rms = float(np.percentile(_frame_rms(samples, SAMPLE_RATE_HZ // 50), 90))
    gain = min(SPEECH_RMS / max(loud_rms, 1e-6), 0.9 / max(float(np.max(np.abs(samples))), 1e-6))
    return np.asarray(samples * gain)


class MicrophoneBuilder:
    """Lays clips out in time, then ``write``\\ s the WAV: ``silence(s)``, ``say(clip, ...)`` in order.

    ``say(clip, pause_near_s=t)`` splits the clip at its quietest point near ``t`` s and inserts ``pause_s`` of
    silence (a mid-sentence pause). ``say(clip, barge_in=True)`` marks it as spoken over the previous reply (the
    caller places it with ``silence``).
    """

    def __init__(self, lead_s: float = 2.0) -> None:
        self._parts: list[np.ndarray] = []
        self._utterances: list[Utterance] = []
        self._length = 0
        self.silence(lead_s)

    @property
    def now_s(self) -> float:
        return self._length / SAMPLE_RATE_HZ

    @property
    def last_end_s(self) -> float:
        """Where the last utterance's speech ends (s)."""
        return self._utterances[-1].end_s if self._utterances else 0.0

    def silence(self, seconds: float) -> MicrophoneBuilder:
        samples = np.zeros(round(seconds * SAMPLE_RATE_HZ))
        self._parts.append(samples)
        self._length += samples.size
        return self

    def silence_until(self, at_s: float) -> MicrophoneBuilder:
        """Silence up to ``at_s`` s from the start of the file (nothing if already past it)."""
        return self.silence(max(0.0, at_s - self.now_s))

    def say(
        self, clip: Clip, *, pause_near_s: float | None = None, pause_s: float = 0.8, barge_in: bool = False
    ) -> MicrophoneBuilder:
        samples, rate = sf.read(clip.path, dtype="float64")
        if rate != SAMPLE_RATE_HZ or samples.ndim != 1:
            raise ValueError(f"{clip.path} is not {SAMPLE_RATE_HZ} Hz mono")
        samples = at_speech_level(samples)
        speech_start_s, speech_end_s = speech_bounds(samples)
        pauses: tuple[tuple[float, float], ...] = ()
        if pause_near_s is not None:
            cut = quietest_point(samples, pause_near_s)
            gap = np.zeros(round(pause_s * SAMPLE_RATE_HZ))
            pause_at = self.now_s + cut / SAMPLE_RATE_HZ
            pauses = ((round(pause_at, 3), round(pause_at + pause_s, 3)),)
            samples = np.concatenate([samples[:cut], gap, samples[cut:]])
            speech_end_s += pause_s
        self._utterances.append(
            Utterance(
                clip=clip.name,
                speaker=clip.speaker,
                transcript=clip.transcript,
                start_s=round(self.now_s + speech_start_s, 3),
                end_s=round(self.now_s + speech_end_s, 3),
                pauses=pauses,
                barge_in=barge_in,
            )
        )
        self._parts.append(samples)
        self._length += samples.size
        return self

    def write(self, path: Path, tail_s: float = 1.0) -> MicrophoneFile:
        self.silence(tail_s)
        path.parent.mkdir(parents=True, exist_ok=True)
        samples = np.clip(np.concatenate(self._parts), -1.0, 1.0)
        sf.write(path, (samples * 32767).astype(np.int16), SAMPLE_RATE_HZ, subtype="PCM_16")
        return MicrophoneFile(path, round(self.now_s, 3), tuple(self._utterances))


# ---------------------------------------------------------------------------------------------------------------
# 2. a run in the browser

# Levels are measured on the audio rendering thread (an AudioWorklet: RMS of each 512 samples, 10.7 ms at 48 kHz),
# stamped with the audio clock and mapped to Date.now() when they reach the main thread, so a busy main thread
# delays the samples but does not shift them in time.
LEVEL_WORKLET = r"""
class Levels extends AudioWorkletProcessor {
  constructor() { super(); this.sums = [0, 0]; this.count = 0; this.batch = []; }
  process(inputs) {
    for (let k = 0; k < 2; k++) {
      const channel = inputs[k] && inputs[k][0];
      if (!channel) continue;
      let s = 0; for (let i = 0; i < channel.length; i++) s += channel[i] * channel[i];
      this.sums[k] += s;
    }
    this.count += 128;
    if (this.count >= 512) {
      this.batch.push([currentTime, Math.sqrt(this.sums[0] / this.count), Math.sqrt(this.sums[1] / this.count)]);
      this.sums = [0, 0]; this.count = 0;
      if (this.batch.length >= 4) { this.port.postMessage(this.batch); this.batch = []; }
    }
    return true;
  }
}
registerProcessor('levels', Levels);
"""

# Runs in every frame before the page's own scripts. The frame that opens the microphone (the streamlit-webrtc
# component's iframe) samples both levels; the top frame records the page's hidden hands-free status.
INIT_SCRIPT = r"""
(() => {
  if (window.__handsFree) return;
  const H = window.__handsFree = {gumAt: null, remoteAt: null, samples: [], lastRemoteLoud: 0, status: [], pcs: [],
                                  connection: [], link: [], errors: []};
  const Peer = window.RTCPeerConnection;
  if (Peer) {
    window.RTCPeerConnection = function (...args) {
      const pc = new Peer(...args); H.pcs.push(pc);
      pc.addEventListener('connectionstatechange', () => H.connection.push([Date.now(), pc.connectionState]));
      const timer = setInterval(async () => {  // packets in, and the ICE pair's last packet: when a link stalls
        if (pc.connectionState === 'closed') { clearInterval(timer); return; }
        const row = [Date.now(), 0, null, null, null];
        (await pc.getStats()).forEach(s => {
          if (s.type === 'inbound-rtp' && s.kind === 'audio') row[1] = s.packetsReceived;
          if (s.type === 'candidate-pair' && s.nominated) {
            row[2] = s.lastPacketReceivedTimestamp; row[3] = s.responsesReceived; row[4] = s.requestsSent;
          }
        });
        H.link.push(row);
      }, 500);
      return pc;
    };
    window.RTCPeerConnection.prototype = Peer.prototype;
  }
  async function sample(stream) {
    const ctx = H.ctx = new AudioContext();
    const url = URL.createObjectURL(new Blob([%(worklet)s], {type: 'application/javascript'}));
    await ctx.audioWorklet.addModule(url);
    const node = new AudioWorkletNode(ctx, 'levels', {numberOfInputs: 2, numberOfOutputs: 1});
    node.connect(ctx.destination);  // pulled by the graph; it writes nothing, so this plays silence
    ctx.createMediaStreamSource(stream).connect(node, 0, 0);
    node.port.onmessage = (event) => {
      const now = Date.now(), audioNow = ctx.currentTime;
      for (const [at, mic, remote] of event.data) {
        const t = Math.round(now - (audioNow - at) * 1000);
        if (remote > %(remote_threshold)s) H.lastRemoteLoud = t;
        H.samples.push([t, +mic.toFixed(5), +remote.toFixed(5)]);
      }
    };
    let remote = null, remoteSource = null;  // the component may replace the stream (a reconnection): follow it
    setInterval(() => {
      const el = [...document.querySelectorAll('audio,video')].find(
        e => e.srcObject && e.srcObject.getAudioTracks().length);
      if (!el || el.srcObject === remote) return;
      if (remoteSource) remoteSource.disconnect();
      remote = el.srcObject; remoteSource = ctx.createMediaStreamSource(remote);
      remoteSource.connect(node, 0, 1);
      H.remoteAt = H.remoteAt || Date.now(); H.remoteStreams = (H.remoteStreams || 0) + 1;
    }, 50);
    await ctx.resume();
  }
  const media = navigator.mediaDevices;
  if (media && media.getUserMedia) {
    const getUserMedia = media.getUserMedia.bind(media);
    media.getUserMedia = async (constraints) => {
      const stream = await getUserMedia(constraints);
      if (H.gumAt === null) {
        H.gumAt = Date.now(); H.micSettings = stream.getAudioTracks().map(t => t.getSettings());
        sample(stream).catch(e => H.errors.push(String(e)));
      }
      return stream;
    };
  }
  if (window === window.top) {
    let last = '';
    setInterval(() => {
      const s = document.querySelector('.handsfree-status');
      if (!s) return;
      const now = [s.dataset.state, s.dataset.turns, s.dataset.interrupted].join('|');
      if (now !== last) { last = now; H.status.push([Date.now(), s.dataset.state, +s.dataset.turns,
                                                     +s.dataset.interrupted]); }
    }, 50);
  }
})();
""".replace("%(remote_threshold)s", str(REMOTE_THRESHOLD)).replace("%(worklet)s", json.dumps(LEVEL_WORKLET))

COLLECT_LEVELS = r"""
async () => {
  const H = window.__handsFree; const stats = [];
  for (const pc of H.pcs) {
    const report = await pc.getStats();
    report.forEach(s => {
      if (s.type === 'inbound-rtp' && s.kind === 'audio') stats.push({
        packetsReceived: s.packetsReceived, packetsLost: s.packetsLost, jitter_s: s.jitter,
        jitterBufferDelayPerSample_ms: s.jitterBufferEmittedCount ?
          1000 * s.jitterBufferDelay / s.jitterBufferEmittedCount : null,
        concealedSamples: s.concealedSamples, totalSamplesReceived: s.totalSamplesReceived});
    });
  }
  return {gumAt: H.gumAt, remoteAt: H.remoteAt, remoteStreams: H.remoteStreams || 0, micSettings: H.micSettings,
          samples: H.samples, errors: H.errors, inbound: stats, connection: H.connection, link: H.link};
}
"""

COLLECT_PAGE = r"""
() => {
  const status = document.querySelector('.handsfree-status');
  return {
    status: status ? {...status.dataset} : null,
    statusLog: window.__handsFree ? window.__handsFree.status : [],
    turns: [...document.querySelectorAll('.handsfree-turn')].map(d => ({...d.dataset})),
    messages: [...document.querySelectorAll('[data-testid=stChatMessage]')].map(m => ({
      role: m.querySelector('[data-testid=stChatMessageAvatarUser]') ? 'user' :
            m.querySelector('[data-testid=stChatMessageAvatarAssistant]') ? 'assistant' : 'unknown',
      text: (m.querySelector('[data-testid=stChatMessageContent]') || m).innerText})),
    now: Date.now(),
  };
}
"""


@dataclass
class Phase:
    """Sessions that talk to the page at the same time, one Chromium process (and microphone file) each."""

    name: str
    microphones: list[MicrophoneFile]
    page_env: dict[str, str] = field(default_factory=dict)
    """The page's extra environment in this phase, over ``BrowserRun.page_env`` (the page restarts per phase)."""


@dataclass
class BrowserRun:
    """What ``run_sessions`` does: ``phases`` in order against one set of services (a fresh page each).

    ``page_env``: extra environment of the page (``FRONTEND_*``); ``page_script``: the Streamlit script, relative
    to the repository root; ``settle_s``: after a microphone file has played, how long to wait at most for the
    last reply to end (the page back to listening, the reply track quiet for 1.5 s).
    """

    phases: list[Phase]
    artifacts: Path = ARTIFACTS
    page_env: dict[str, str] = field(default_factory=dict)
    page_script: str = "frontend/app.py"
    settle_s: float = 30.0

    def to_json(self) -> dict[str, Any]:
        return {
            "phases": [
                {"name": p.name, "microphones": [m.to_json() for m in p.microphones], "page_env": p.page_env}
                for p in self.phases
            ],
            "artifacts": str(self.artifacts),
            "page_env": self.page_env,
            "page_script": self.page_script,
            "settle_s": self.settle_s,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BrowserRun:
        phases = [
            Phase(p["name"], [MicrophoneFile.from_json(m) for m in p["microphones"]], p["page_env"])
            for p in data["phases"]
        ]
        settings = {key: data[key] for key in ("page_env", "page_script", "settle_s")}
        return cls(phases, Path(data["artifacts"]), **settings)


class BrowserUnavailable(RuntimeError):
    """No Chromium at ``CHROMIUM``."""


def run_sessions(run: BrowserRun, *, timeout_s: float = 900.0) -> dict[str, Any]:
    """Do ``run`` inside a fresh private network namespace and return its raw result (``result.json``).

    Raw result: ``{"phases": [{"name", "sessions": [{"microphone", "levels", "page", "started_at_ms", ...}],
    "cpu_s": {process: seconds}, "wall_s", "machine", "cpu_timeline"}], "service_logs"}``; a phase that failed is
    ``{"name", "error"}`` and the next one still runs. Feed each session to ``analyze_session``.
    Raises BrowserUnavailable without Chromium, RuntimeError when the run inside fails (with the tail of its log),
    subprocess.TimeoutExpired after ``timeout_s``.
    """
    if not Path(CHROMIUM).exists():
        raise BrowserUnavailable(f"no Chromium at {CHROMIUM}: `make test` installs Debian's chromium (or CHROMIUM=)")
    run.artifacts.mkdir(parents=True, exist_ok=True)
    plan_path, result_path, log_path = (run.artifacts / name for name in ("plan.json", "result.json", "run.log"))
    result_path.unlink(missing_ok=True)
    log_path.unlink(missing_ok=True)
    shutil.rmtree(run.artifacts / "logs", ignore_errors=True)  # the processes append to their logs
    plan_path.write_text(json.dumps(run.to_json(), indent=1))
    done = netns.run_isolated(
        [str(FRONTEND_PYTHON), "-m", "bench.browser", str(plan_path), str(result_path)],
        timeout_s=timeout_s,
        log_path=log_path,
    )
    if done.returncode != 0 or not result_path.exists():
        tail = log_path.read_text(errors="replace")[-4000:] if log_path.exists() else ""
        raise RuntimeError(f"the browser run failed (exit {done.returncode}), {log_path}:\n{tail}")
    result: dict[str, Any] = json.loads(result_path.read_text())
    return result


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) used so far by process ``pid`` and its live descendants; 0 once it has ended."""
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    return sum(_own_cpu_s(process) for process in processes)


def _own_cpu_s(process: psutil.Process) -> float:
    with contextlib.suppress(psutil.Error):
        times = process.cpu_times()
        return float(times.user + times.system)
    return 0.0


def _browsers_cpu_s() -> float:
    """CPU seconds used so far by the Chromium processes of this network namespace (the harness's browsers: their
    renderers are re-parented away from the browser process, so they are found by namespace, not by tree)."""
    mine = os.readlink("/proc/self/ns/net")
    total = 0.0
    for process in psutil.process_iter(["name"]):
        with contextlib.suppress(OSError, psutil.Error):
            if "chrom" in (process.info["name"] or "") and os.readlink(f"/proc/{process.pid}/ns/net") == mine:
                total += _own_cpu_s(process)
    return total


def _namespace_cpu_s() -> float:
    """CPU seconds used so far by every process of this network namespace: everything the run started."""
    mine = os.readlink("/proc/self/ns/net")
    total = 0.0
    for process in psutil.process_iter():
        with contextlib.suppress(OSError, psutil.Error):
            if os.readlink(f"/proc/{process.pid}/ns/net") == mine:
                total += _own_cpu_s(process)
    return total


def _machine_use(before: Any, after: Any, ours_s: float) -> dict[str, Any]:
    """The whole machine over a phase (``psutil.cpu_times`` before and after): CPU seconds busy, of which not ours
    (other work competing with the run, which slows every number), and stolen by the hypervisor."""
    busy = sum(getattr(after, name) - getattr(before, name) for name in ("user", "nice", "system", "irq", "softirq"))
    return {
        "cores": psutil.cpu_count(),
        "busy_cpu_s": round(busy, 1),
        "others_cpu_s": round(max(0.0, busy - ours_s), 1),
        "steal_s": round(getattr(after, "steal", 0.0) - getattr(before, "steal", 0.0), 1),
        "load_average_after": [round(value, 2) for value in os.getloadavg()],
    }


class _CpuTimeline(threading.Thread):
    """Every second: ``[epoch ms, share of a core used by each measured process, by the whole machine (cores)]``, to
    see which process was busy or starved when something went wrong (a reply late, a connection lost)."""

    def __init__(self, pids: dict[str, int]) -> None:
        super().__init__(name="cpu-timeline", daemon=True)
        self.pids = pids
        self.rows: list[list[Any]] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        last = self._sample()
        last_machine, last_at = psutil.cpu_times(), time.monotonic()
        while not self._stop_event.wait(1.0):
            now = self._sample()
            machine, at = psutil.cpu_times(), time.monotonic()
            elapsed = at - last_at
            busy = sum(getattr(machine, n) - getattr(last_machine, n) for n in ("user", "nice", "system"))
            row = {name: round((now[name] - last[name]) / elapsed, 2) for name in now}
            self.rows.append([round(time.time() * 1000), row, round(busy / elapsed, 2)])
            last, last_machine, last_at = now, machine, at

    def _sample(self) -> dict[str, float]:
        return {**{name: _cpu_s(pid) for name, pid in self.pids.items()}, "browsers": _browsers_cpu_s()}

    def __enter__(self) -> _CpuTimeline:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop_event.set()
        self.join()


class _Inside:
    """The part of a run inside the namespace: services, page, browsers; writes the raw result."""

    def __init__(self, run: BrowserRun) -> None:
        self.run = run
        self.logs = run.artifacts / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)

    def main(self, result_path: Path) -> None:
        from playwright.sync_api import sync_playwright

        found = netns.interfaces()
        if netns.TEST_INTERFACE not in found or len(found) != 3:
            raise RuntimeError(f"not inside the test namespace (interfaces {found}): run through run_sessions")
        started = time.monotonic()
        services = start_services(("stt", "llm", "tts"), self.logs)
        result: dict[str, Any] = {
            "phases": [],
            "service_logs": {name: str(service.log_path) for name, service in services.items()},
            "services_started_s": round(time.monotonic() - started, 1),
        }
        urls = {f"FRONTEND_{name.upper()}_URL": service.url for name, service in services.items()}
        try:
            with sync_playwright() as playwright:
                for phase in self.run.phases:
                    try:
                        with self._page(phase, {**urls, **self.run.page_env, **phase.page_env}) as page:
                            pids = {"page": page.pid, **{name: service.pid for name, service in services.items()}}
                            url = page.ready_url.removesuffix("_stcore/health")
                            result["phases"].append(self.phase(playwright, url, phase, pids))
                    except Exception as err:  # recorded; the next phase still runs
                        logger.exception("phase %s failed", phase.name)
                        result["phases"].append({"name": phase.name, "error": f"{type(err).__name__}: {err}"})
                    result_path.write_text(json.dumps(result))  # what is done survives a later failure
        finally:
            stop_all(services.values())
        result["seconds"] = round(time.monotonic() - started, 1)
        result_path.write_text(json.dumps(result))

    def _page(self, phase: Phase, env: dict[str, str]) -> ReadyProcess:
        """The page, a fresh process for each phase (its own environment; no session left from the last phase)."""
        port = free_port()
        command = [
            str(VENVS / "frontend" / "bin" / "streamlit"), "run", str(REPO_ROOT / self.run.page_script),
            "--server.address", "127.0.0.1", "--server.port", str(port), "--server.headless", "true",
            "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false",
        ]  # fmt: skip
        health = f"http://127.0.0.1:{port}/_stcore/health"
        env = {"FRONTEND_DATA_DIR": str(self.logs / f"page-data-{phase.name}"), **env}  # not the user's own store
        return ReadyProcess(command, health, self.logs / f"page-{phase.name}.log", env=env, ready_timeout_s=120)

    def phase(self, playwright: Any, url: str, phase: Phase, pids: dict[str, int | None]) -> dict[str, Any]:
        logger.info("phase %s: %d session(s)", phase.name, len(phase.microphones))
        browsers, sessions = [], []
        try:
            for index, microphone in enumerate(phase.microphones):
                browser = playwright.chromium.launch(
                    executable_path=CHROMIUM,
                    args=[*CHROMIUM_FLAGS, f"--use-file-for-fake-audio-capture={microphone.path}%noloop"],
                )
                browsers.append(browser)
                page = browser.new_context(viewport={"width": 1000, "height": 1200}).new_page()
                console: list[str] = []
                page.on("console", lambda message, log=console: log.append(f"{message.type}: {message.text}"[:300]))
                page.add_init_script(INIT_SCRIPT)
                page.goto(url, wait_until="domcontentloaded")
                sessions.append({"index": index, "page": page, "console": console, "microphone": microphone})
            for session in sessions:
                session["frame"], session["start"] = self._start_button(session["page"])
            measured = {name: pid for name, pid in pids.items() if pid}
            cpu_before = {name: _cpu_s(pid) for name, pid in measured.items()}
            everything_before, browsers_before = _namespace_cpu_s(), _browsers_cpu_s()
            machine_before = psutil.cpu_times()
            wall_started = time.monotonic()
            for session in sessions:  # START in each, as close together as clicks go
                session["started_at_ms"] = session["page"].evaluate("Date.now()")
                session["start"].click()
            with _CpuTimeline(measured) as timeline:
                self._wait_until_played(sessions)
            wall_s = round(time.monotonic() - wall_started, 1)
            cpu = {name: round(_cpu_s(pid) - cpu_before[name], 2) for name, pid in measured.items()}
            ours = _namespace_cpu_s() - everything_before
            cpu["browsers"] = round(_browsers_cpu_s() - browsers_before, 2)
            cpu["harness"] = round(ours - sum(cpu.values()), 2)  # this runner and Playwright's driver
            machine = _machine_use(machine_before, psutil.cpu_times(), ours)
            raw = [self._collect(phase, session) for session in sessions]
        finally:
            for browser in browsers:
                browser.close()
        return {
            "name": phase.name,
            "sessions": raw,
            "cpu_s": cpu,
            "wall_s": wall_s,
            "machine": machine,
            "cpu_timeline": timeline.rows,
        }

    @staticmethod
    def _start_button(page: Any) -> tuple[Any, Any]:
        """The streamlit-webrtc component's frame and its START button, once they are there."""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            failure = page.locator("[data-testid=stException]")
            if failure.count():
                raise RuntimeError(f"the page failed: {failure.first.inner_text()[:2000]}")
            for frame in page.frames:
                if "streamlit_webrtc" in frame.url:
                    button = frame.get_by_role("button", name=re.compile(r"^start$", re.IGNORECASE))
                    button.wait_for(timeout=120_000)
                    return frame, button
            page.wait_for_timeout(200)  # not time.sleep: the sync API handles events only inside its own calls
        raise RuntimeError(f"no streamlit-webrtc component on the page: {page.inner_text('body')[:2000]}")

    def _wait_until_played(self, sessions: list[dict[str, Any]]) -> None:
        """Until every microphone file has played, then until each page listens again with the reply track quiet
        for 1.5 s (its last reply over), ``settle_s`` at most."""
        pending = list(sessions)
        while pending:
            sessions[0]["page"].wait_for_timeout(500)  # not time.sleep: the sync API handles events in its calls
            for session in list(pending):
                state = session["frame"].evaluate(
                    "() => { const H = window.__handsFree; return {gumAt: H.gumAt, now: Date.now(),"
                    " lastRemoteLoud: H.lastRemoteLoud}; }"
                )
                if state["gumAt"] is None:
                    if state["now"] - session["started_at_ms"] > 30_000:
                        raise RuntimeError("the page did not open the microphone within 30 s of START")
                    continue
                if state["now"] < state["gumAt"] + session["microphone"].duration_s * 1000:
                    continue
                status = session["page"].evaluate(
                    "() => { const s = document.querySelector('.handsfree-status'); return s && s.dataset.state; }"
                )
                quiet = state["now"] - state["lastRemoteLoud"] > 1500 and status in ("listening", "off", None)
                played_at = session.setdefault("played_at", time.monotonic())
                if quiet or time.monotonic() - played_at > self.run.settle_s:
                    pending.remove(session)

    def _collect(self, phase: Phase, session: dict[str, Any]) -> dict[str, Any]:
        page, frame = session["page"], session["frame"]
        levels = frame.evaluate(COLLECT_LEVELS)
        content = page.evaluate(COLLECT_PAGE)
        name = f"{phase.name}-{session['index']}"
        page.screenshot(path=str(self.run.artifacts / f"{name}.png"), full_page=True)
        stop = frame.get_by_role("button", name=re.compile(r"^stop$", re.IGNORECASE))
        if stop.count():
            stop.click()
            page.wait_for_timeout(1000)
        return {
            "name": name,
            "microphone": session["microphone"].to_json(),
            "started_at_ms": session["started_at_ms"],
            "levels": levels,
            "page": content,
            "console": session["console"][-40:],
        }


def inside_main(argv: Sequence[str] | None = None) -> None:
    """``python -m bench.browser PLAN.json RESULT.json``, inside the namespace (``run_sessions`` calls it)."""
    parser = argparse.ArgumentParser(prog="python -m bench.browser")
    parser.add_argument("plan", type=Path)
    parser.add_argument("result", type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    run = BrowserRun.from_json(json.loads(args.plan.read_text()))
    _Inside(run).main(args.result)


# ---------------------------------------------------------------------------------------------------------------
# 3. analysis


@dataclass
class UtteranceResult:
    """What the browser measured around one utterance; times in ms on the browser's clock (``Date.now()``).

    - ``speech_start_ms``/``speech_end_ms``: the microphone level rising / falling (quiet ``MIC_QUIET_MS`` after).
    - ``mic_segments``: stretches of microphone sound within the utterance (2 for a mid-sentence pause).
    - ``reply_onsets_ms``: each reply heard after it (sound separated by ``REPLY_GAP_MS``), up to the next
      utterance (the next non-barge-in utterance when the next one barges in), or the end of the recording.
    - ``end_of_speech_to_first_audio_ms``: ``speech_end_ms`` -> the first of those onsets.
    - ``sound_during_speech_ms``: reply sound heard while the user was speaking (pauses included), before the user
      could have been answered; a reply to half a sentence shows here.
    - ``reply_playing_at_onset`` / ``barge_in_silence_ms``: for a barge-in utterance, whether the reply was audible
      in the 300 ms before the user's onset, and the onset -> the reply quiet for ``SILENCE_HOLD_MS``.
    - ``reply_s``: how long the first reply sounded (to its last loud sample before the next utterance).
    """

    index: int
    clip: str
    speaker: str
    barge_in: bool
    speech_start_ms: float | None = None
    speech_end_ms: float | None = None
    mic_segments: int = 0
    reply_onsets_ms: list[float] = field(default_factory=list)
    end_of_speech_to_first_audio_ms: float | None = None
    sound_during_speech_ms: float = 0.0
    reply_playing_at_onset: bool | None = None
    barge_in_silence_ms: float | None = None
    reply_s: float | None = None
    turn: dict[str, Any] | None = None
    """The page's finished turn for this utterance (``handsfree-turn``: transcript, interrupted, timings)."""
    transport_ms: float | None = None
    """``end_of_speech_to_first_audio_ms`` minus the engine's ``end_of_speech_to_audio_ms``: WebRTC both ways,
    the jitter buffer, Chromium's capture and playout."""

    @property
    def lost(self) -> bool:
        """No reply heard after it (a barge-in utterance's own reply counts, the one it interrupted does not)."""
        return not self.reply_onsets_ms


@dataclass
class SessionResult:
    name: str
    utterances: list[UtteranceResult]
    turns: list[dict[str, Any]]
    """The page's finished turns, in order: ``transcript``, ``interrupted`` (bool), ``timings`` (dict)."""
    messages: list[dict[str, str]]
    """Chat messages on the page at the end: ``role`` (user / assistant), ``text``."""
    status: dict[str, str] | None
    sample_gap_ms: float
    """The longest gap between two level samples (10 ms expected): the measurements' resolution."""
    inbound: list[dict[str, Any]]


def _runs(times: np.ndarray, loud: np.ndarray, min_gap_ms: float) -> list[tuple[float, float]]:
    """(first loud, last loud) times of stretches of ``loud`` samples, joining stretches closer than
    ``min_gap_ms``."""
    out: list[tuple[float, float]] = []
    for t in times[loud]:
        if out and t - out[-1][1] < min_gap_ms:
            out[-1] = (out[-1][0], float(t))
        else:
            out.append((float(t), float(t)))
    return out


def _words(text: str) -> set[str]:
    return set(re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split())


def _match_turns(utterances: list[UtteranceResult], turns: list[dict[str, Any]], expected: list[str]) -> None:
    """Give each utterance the page's turn whose transcript shares most words with what it says (each turn once,
    in order)."""
    next_turn = 0
    for result, text in zip(utterances, expected, strict=True):
        best, best_overlap = None, 0.0
        for k in range(next_turn, len(turns)):
            want = _words(text)
            overlap = len(want & _words(turns[k]["transcript"])) / max(1, len(want))
            if overlap > best_overlap:
                best, best_overlap = k, overlap
        if best is not None and best_overlap >= 0.3:
            result.turn = turns[best]
            next_turn = best + 1


def analyze_session(raw: dict[str, Any]) -> SessionResult:
    """Measure every utterance of one session's raw result (``run_sessions``' ``phases[i]["sessions"][j]``)."""
    microphone = MicrophoneFile.from_json(raw["microphone"])
    levels = raw["levels"]
    series = np.array(levels["samples"], dtype=float).reshape(-1, 3)
    times, mic, remote = series[:, 0], series[:, 1], series[:, 2]
    origin = float(levels["gumAt"])  # the file starts playing when the microphone opens
    mic_runs = [r for r in _runs(times, mic > MIC_THRESHOLD, MIC_QUIET_MS) if r[1] - r[0] >= 50]
    remote_loud = remote > REMOTE_THRESHOLD
    replies = _runs(times, remote_loud, REPLY_GAP_MS)
    results: list[UtteranceResult] = []
    utterances = microphone.utterances
    for index, utterance in enumerate(utterances):
        result = UtteranceResult(index, utterance.clip, utterance.speaker, utterance.barge_in)
        results.append(result)
        window = (origin + utterance.start_s * 1000 - 300, origin + utterance.end_s * 1000 + 300)
        mine = [r for r in mic_runs if window[0] <= r[0] <= window[1]]
        if not mine:
            continue
        result.mic_segments = len(mine)
        result.speech_start_ms, result.speech_end_ms = mine[0][0], max(r[1] for r in mine)
        during = (times >= result.speech_start_ms) & (times <= result.speech_end_ms)
        result.sound_during_speech_ms = float(np.count_nonzero(remote_loud & during) * 10)
        # answers to this utterance are heard until the next utterance that does not barge in (a barge-in
        # utterance's onset interrupts the reply, it does not end the window in which the reply started)
        later = [u for u in utterances[index + 1 :] if not u.barge_in]
        until = origin + later[0].start_s * 1000 if later else float(times[-1])
        if index + 1 < len(utterances) and utterances[index + 1].barge_in:
            until = origin + utterances[index + 1].start_s * 1000 + 300
        onsets = [r for r in replies if result.speech_end_ms < r[0] < until]
        result.reply_onsets_ms = [r[0] for r in onsets]
        if onsets:
            result.end_of_speech_to_first_audio_ms = round(onsets[0][0] - result.speech_end_ms, 1)
            result.reply_s = round((min(onsets[0][1], until) - onsets[0][0]) / 1000, 2)
        if utterance.barge_in:
            onset = result.speech_start_ms
            before = (times >= onset - 300) & (times <= onset)
            result.reply_playing_at_onset = bool(np.any(remote_loud & before))
            if result.reply_playing_at_onset:
                result.barge_in_silence_ms = _silenced_after(times, remote_loud, onset)
    turns = [
        {
            "transcript": turn.get("transcript", ""),
            "interrupted": turn.get("interrupted") == "1",
            "timings": json.loads(turn.get("timings") or "{}"),
        }
        for turn in raw["page"]["turns"]
    ]
    _match_turns(results, turns, [u.transcript for u in utterances])
    for result in results:
        server = (result.turn or {}).get("timings", {}).get("end_of_speech_to_audio_ms")
        if server is not None and result.end_of_speech_to_first_audio_ms is not None:
            result.transport_ms = round(result.end_of_speech_to_first_audio_ms - server, 1)
    gaps = np.diff(times)
    return SessionResult(
        name=raw["name"],
        utterances=results,
        turns=turns,
        messages=raw["page"]["messages"],
        status=raw["page"]["status"],
        sample_gap_ms=float(gaps.max()) if gaps.size else 0.0,
        inbound=levels.get("inbound", []),
    )


def _silenced_after(times: np.ndarray, loud: np.ndarray, onset_ms: float) -> float | None:
    """Time (ms) from ``onset_ms`` to the first quiet sample after which the track stays quiet ``SILENCE_HOLD_MS``;
    None if it never does before the recording ends."""
    quiet_from: float | None = None
    for t, is_loud in zip(times[times >= onset_ms], loud[times >= onset_ms], strict=True):
        if is_loud:
            quiet_from = None
        elif quiet_from is None:
            quiet_from = float(t)
        elif t - quiet_from >= SILENCE_HOLD_MS:
            return round(quiet_from - onset_ms, 1)
    return None


def utterance_rows(sessions: Iterable[SessionResult]) -> list[dict[str, Any]]:
    """One plain dict per utterance of ``sessions`` (for JSON), with its session's name."""
    return [{"session": s.name, **asdict(u), "lost": u.lost} for s in sessions for u in s.utterances]


if __name__ == "__main__":
    inside_main()
