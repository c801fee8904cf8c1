"""Tests of the TTS service (real embedded Piper voice; a fake engine only in test_fake_engine.py)."""
