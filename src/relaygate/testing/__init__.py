"""Upstream emulators and helpers for testing relaygate and its plugins without the network."""

from relaygate.testing._emulator import Emulator, Fault, Recorded, Reply, ToolCall
from relaygate.testing.anthropic_emulator import AnthropicEmulator
from relaygate.testing.openai_emulator import OpenAIEmulator

__all__ = [
    "AnthropicEmulator",
    "Emulator",
    "Fault",
    "OpenAIEmulator",
    "Recorded",
    "Reply",
    "ToolCall",
]
