"""OpenAI-compatible providers as data: a row each, no code.

Each row's name is a reserved backend prefix and an auto-detection source (its key env var).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CompatProvider:
    name: str
    base_url: str
    key_env: str | None
    description: str
    needs_key: bool = True
    max_tokens_field: str = "max_tokens"
    # What the provider's Chat Completions endpoint supports, as data (tools, vision,
    # json_schema, reasoning, embeddings); shown by describe/admin, used by capability checks.
    capabilities: frozenset[str] = frozenset({"tools", "json_schema"})


PROVIDERS: tuple[CompatProvider, ...] = (
    CompatProvider(
        "openrouter",
        "https://openrouter.ai/api/v1",
        "OPENROUTER_API_KEY",
        "OpenRouter",
        capabilities=frozenset({"tools", "vision", "json_schema", "reasoning", "embeddings"}),
    ),
    CompatProvider(
        "groq",
        "https://api.groq.com/openai/v1",
        "GROQ_API_KEY",
        "Groq",
        capabilities=frozenset({"tools", "vision", "json_schema", "reasoning"}),
    ),
    CompatProvider(
        "deepseek",
        "https://api.deepseek.com/v1",
        "DEEPSEEK_API_KEY",
        "DeepSeek",
        capabilities=frozenset({"tools", "json_object", "reasoning"}),
    ),
    CompatProvider(
        "xai",
        "https://api.x.ai/v1",
        "XAI_API_KEY",
        "xAI",
        capabilities=frozenset({"tools", "vision", "json_schema", "reasoning"}),
    ),
    CompatProvider(
        "together",
        "https://api.together.xyz/v1",
        "TOGETHER_API_KEY",
        "Together AI",
        capabilities=frozenset({"tools", "vision", "json_schema", "embeddings"}),
    ),
    CompatProvider(
        "mistral",
        "https://api.mistral.ai/v1",
        "MISTRAL_API_KEY",
        "Mistral",
        capabilities=frozenset({"tools", "vision", "json_schema", "embeddings"}),
    ),
    CompatProvider(
        "vllm", "http://127.0.0.1:8000/v1", "VLLM_API_KEY", "vLLM server", needs_key=False
    ),
    CompatProvider(
        "llamacpp",
        "http://127.0.0.1:8080/v1",
        "LLAMACPP_API_KEY",
        "llama.cpp server",
        needs_key=False,
    ),
    CompatProvider(
        "lmstudio", "http://127.0.0.1:1234/v1", "LMSTUDIO_API_KEY", "LM Studio", needs_key=False
    ),
)
