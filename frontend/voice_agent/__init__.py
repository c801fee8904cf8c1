"""The voice agent's client side: service clients, the conversation pipeline, the command line."""
