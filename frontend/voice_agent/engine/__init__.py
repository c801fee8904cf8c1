"""The hands-free conversation engine: 16 kHz PCM frames in, events and reply audio out (``conversation``);
streaming VAD (``vad``), end of turn (``turns``), partial transcripts (``transcript``), the events (``events``)."""
