"""Realtime service: OpenAI's Realtime API for the voice agent, offline on a CPU.

`GET /v1/realtime` (WebSocket) and `POST /v1/realtime/calls` (WebRTC: SDP offer in, SDP answer out, events on the
`oai-events` data channel) hold Realtime sessions. Each session is one conversation engine (the one the page uses:
streaming Silero VAD, Smart Turn end-of-turn model, partial transcripts, speculative start, barge-in) driving the
STT, LLM and TTS services over HTTP. The events are OpenAI's GA Realtime events; see docs/realtime.md for what is
supported and what differs.
"""
