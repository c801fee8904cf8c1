"""Speech-to-text service: OpenAI-compatible ``POST /v1/audio/transcriptions`` on faster-whisper.

Whisper through faster-whisper (CTranslate2); the embedded default model (tiny.en) works offline.
"""
