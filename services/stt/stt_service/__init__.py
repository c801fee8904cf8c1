"""Speech-to-text service: OpenAI-compatible ``POST /v1/audio/transcriptions`` on faster-whisper."""
