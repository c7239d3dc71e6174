"""Operations commands: ``relaygate keys create|list|revoke``, ``relaygate usage``,
``relaygate providers``. They talk to the store named by the config (``storage.url``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from relaygate.config import Config, ConfigError, load_config
from relaygate.store import Store, StoreUnavailable

T = TypeVar("T")

keys_app = typer.Typer(no_args_is_help=True, help="Virtual client keys.")
console = Console(stderr=True)
out = Console()

ConfigOpt = Annotated[str | None, typer.Option("--config", "-c", help="Path to relaygate.yaml.")]


def _config(path: str | None) -> Config:
    if not path:
        return Config()
    try:
        return load_config(path)
    except ConfigError as exc:
        for line in exc.problems:
            console.print(f"[red]✗[/red] {line}", highlight=False)
        raise typer.Exit(1) from None


def _run(path: str | None, work: Callable[[Store], Awaitable[T]]) -> T:
    store = Store(_config(path).storage.url)

    async def main() -> T:
        try:
            return await work(store)
        finally:
            await store.close()

    try:
        return asyncio.run(main())
    except StoreUnavailable as exc:
        console.print(f"[red]✗[/red] store unavailable: {exc} — check storage.url")
        raise typer.Exit(1) from None


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option("--name", help="A label for the key.")],
    rpm: Annotated[int | None, typer.Option(help="Requests per minute.", min=1)] = None,
    tpm: Annotated[int | None, typer.Option(help="Tokens per minute.", min=1)] = None,
    budget: Annotated[float | None, typer.Option(help="Budget in USD.", min=0)] = None,
    models: Annotated[
        list[str] | None, typer.Option("--models", help="Allowed models (globs); repeat.")
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Create a key. It is printed once and stored only as a hash."""
    key = _run(
        config,
        lambda s: s.create_key(name, rpm=rpm, tpm=tpm, budget=budget, models=models or None),
    )
    console.print(f"created key {key.id} ({key.name}) — store it now, it is not shown again:")
    out.print(key.key, highlight=False)


@keys_app.command("list")
def keys_list(config: ConfigOpt = None) -> None:
    """List keys (never their secrets)."""
    rows = _run(config, lambda s: s.list_keys())
    table = Table("name", "rpm", "tpm", "budget", "models", "created", "status")
    table.add_column("id", no_wrap=True)
    for k in rows:
        table.add_row(
            k["name"],
            str(k["rpm"] or "-"),
            str(k["tpm"] or "-"),
            f"${k['budget']:.2f}" if k["budget"] is not None else "-",
            ", ".join(k["models"] or []) or "any",
            time.strftime("%Y-%m-%d %H:%M", time.localtime(k["created"])),
            "revoked" if k["revoked"] else "active",
            k["id"],
        )
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: str, config: ConfigOpt = None) -> None:
    """Revoke a key by id."""
    if not _run(config, lambda s: s.revoke_key(key_id)):
        console.print(f"[red]✗[/red] no active key with id {key_id}")
        raise typer.Exit(1)
    console.print(f"revoked {key_id}")


def usage(
    by: Annotated[str, typer.Option(help="Group by key_id, backend, model or route.")] = "key_id",
    hours: Annotated[float | None, typer.Option(help="Only the last N hours.")] = None,
    config: ConfigOpt = None,
) -> None:
    """Summarise the usage ledger."""
    if by not in ("key_id", "backend", "model", "route"):
        console.print("[red]✗[/red] --by: use key_id, backend, model or route")
        raise typer.Exit(1)
    since = time.time() - hours * 3600 if hours else None
    rows = _run(config, lambda s: s.usage_summary(since=since, group_by=by))
    table = Table(
        by, "requests", "errors", "input", "output", "cache read", "reasoning", "cost $", "avg ms"
    )
    for r in rows:
        table.add_row(
            str(r["group"]),
            str(r["requests"]),
            str(r["errors"] or 0),
            str(r["input_tokens"] or 0),
            str(r["output_tokens"] or 0),
            str(r["cache_read_tokens"] or 0),
            str(r["reasoning_tokens"] or 0),
            f"{r['cost'] or 0:.6f}",
            f"{r['avg_latency_ms'] or 0:.1f}",
        )
    out.print(table)


def providers(config: ConfigOpt = None) -> None:
    """Providers: those of the config file and those registered at run time."""
    cfg = _config(config)
    stored: list[dict[str, Any]] = _run(config, lambda s: s.load_providers())
    table = Table("name", "type", "source", "base url", "key")
    for b in cfg.plugins.backends:
        table.add_row(b.id, b.kind, "config", str(b.config.get("base_url") or "(default)"), "-")
    for p in stored:
        table.add_row(
            p["name"],
            p["kind"],
            "runtime",
            str(p["config"].get("base_url") or "(default)"),
            "encrypted" if p["secret"] else "none",
        )
    out.print(table)


def register(app: typer.Typer) -> None:
    """Add the operations commands to the ``relaygate`` app."""
    app.add_typer(keys_app, name="keys")
    app.command("usage")(usage)
    app.command("providers")(providers)
