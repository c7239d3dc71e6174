"""relaygate — one endpoint for every LLM."""

__version__ = "0.1.0"
