"""Shared pieces of the voice agent's services (no model library, no global state)."""
