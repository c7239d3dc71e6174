"""Upstream emulators and helpers for testing relaygate and its plugins without the network."""

from relaygate.testing._emulator import Emulator, Fault, Recorded, Reply, ToolCall
from relaygate.testing.anthropic_emulator import AnthropicEmulator
from relaygate.testing.gemini_emulator import GeminiEmulator
from relaygate.testing.openai_emulator import OpenAIEmulator
from relaygate.testing.responses_emulator import ResponsesEmulator

__all__ = [
    "AnthropicEmulator",
    "Emulator",
    "Fault",
    "GeminiEmulator",
    "OpenAIEmulator",
    "Recorded",
    "Reply",
    "ResponsesEmulator",
    "ToolCall",
]
