"""Gapless, queued playback of reply audio in the browser, sentence by sentence, as it arrives.

Each sentence's WAV is handed to a tiny script inside a zero-height component iframe. The script keeps one
queue on the page itself (``window.parent.__voiceAgent``), so sentences play back to back, in order, while
later ones are still being synthesised; the queue and its ``Audio`` objects outlive the iframes, which
Streamlit removes when the page reruns. A sentence is queued once even if its iframe is drawn again.
``__voiceAgent.played`` records when each sentence started playing (``Date.now()`` ms) for tests and
diagnostics, ``__voiceAgent.blocked`` why the browser refused to play, if it did.
"""

from __future__ import annotations

import base64
import json

from .audio import pcm_to_wav

__all__ = ["pcm_to_wav", "queued_player_html"]

_SCRIPT = """
<script>
(function () {
  const page = window.parent;
  const state = page.__voiceAgent || (page.__voiceAgent = {queue: [], playing: null, seen: {}, played: [], turn: null});
  const item = %(item)s;
  if (state.turn !== item.turn) {            // a new turn interrupts whatever the last one was still saying
    if (state.playing) { state.playing.pause(); state.playing = null; }
    state.queue = [];
    state.turn = item.turn;
  }
  const key = item.turn + ":" + item.index;
  if (state.seen[key]) { return; }
  state.seen[key] = true;
  state.queue.push(item);
  state.queue.sort((a, b) => a.index - b.index);
  function next() {
    if (state.playing || state.queue.length === 0) { return; }
    const current = state.queue.shift();
    const audio = new page.Audio("data:audio/wav;base64," + current.wav);
    state.playing = audio;
    const done = () => { if (state.playing === audio) { state.playing = null; } next(); };
    audio.onended = done;
    audio.onerror = done;
    audio.play()
      .then(() => state.played.push({turn: current.turn, index: current.index, at: Date.now()}))
      .catch((err) => { state.blocked = String(err); done(); });
  }
  next();
})();
</script>
"""


def queued_player_html(wav: bytes, *, turn: int, index: int) -> str:
    """HTML for ``streamlit.components.v1.html``: queue sentence ``index`` of turn ``turn`` for playback."""
    item = {"turn": turn, "index": index, "wav": base64.b64encode(wav).decode("ascii")}
    return _SCRIPT % {"item": json.dumps(item)}
