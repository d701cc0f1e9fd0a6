"""Reading logs: validation, normalisation and rejects with reasons (nothing dropped silently)."""
