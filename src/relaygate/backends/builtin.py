"""The built-in backend kinds, registered through the same hook as any plugin."""

from __future__ import annotations

from typing import Any

from relaygate.backends.base import Backend, HttpOptions
from relaygate.backends.compat import PROVIDERS, CompatProvider
from relaygate.backends.openai import OpenAIBackend, OpenAIChatBackend
from relaygate.backends.registry import BackendKind, BuildContext
from relaygate.hooks import hookimpl


def _openai(backend_id: str, options: Any, ctx: BuildContext) -> Backend:
    from relaygate.backends.responses import OpenAINativeBackend

    return OpenAINativeBackend(backend_id, options, transport=ctx.transport, env=ctx.env)


def _custom_openai(backend_id: str, options: Any, ctx: BuildContext) -> Backend:
    return OpenAIChatBackend(backend_id, options, transport=ctx.transport, env=ctx.env)


def _compat_factory(row: CompatProvider) -> Any:
    def build(backend_id: str, options: HttpOptions, ctx: BuildContext) -> Backend:
        cls = type(
            f"{row.name.title()}Backend",
            (OpenAIChatBackend,),
            {
                "kind": row.name,
                "default_base_url": row.base_url,
                "max_tokens_field": row.max_tokens_field,
            },
        )
        if not options.resolve_keys(ctx.env) and row.key_env and not options.api_key_env_var_root:
            options = options.model_copy(update={"api_key_env_var_root": row.key_env})
        backend: Backend = cls(backend_id, options, transport=ctx.transport, env=ctx.env)
        return backend

    return build


@hookimpl
def register_backend_kinds(register: Any) -> None:
    register(
        BackendKind(
            "openai",
            _openai,
            description="OpenAI (Chat Completions; Responses natively for Responses clients)",
            env_key="OPENAI_API_KEY",
            default_base_url=OpenAIBackend.default_base_url,
        )
    )
    register(
        BackendKind(
            "custom-openai-legacy-compatible",
            _custom_openai,
            description="Any OpenAI Chat Completions-compatible server",
            reserved_prefix=False,
            requires_base_url=True,
            custom_prefix=True,
        )
    )
    for row in PROVIDERS:
        register(
            BackendKind(
                row.name,
                _compat_factory(row),
                description=row.description,
                env_key=row.key_env if row.needs_key else None,
                default_base_url=row.base_url,
            )
        )
    _register_optional(register)


def _register_optional(register: Any) -> None:
    """Kinds that live in their own modules; each module registers itself if present."""
    import importlib

    for name in ("anthropic", "responses", "gemini", "ollama", "cli", "local"):
        try:
            module = importlib.import_module(f"relaygate.backends.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"relaygate.backends.{name}":
                continue
            raise
        hook = getattr(module, "register_kinds", None)
        if hook is not None:
            hook(register)
