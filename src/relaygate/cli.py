"""The ``relaygate`` command: serve, check-config, models."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from relaygate import __version__
from relaygate.config import ConfigError

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="relaygate — one endpoint for every LLM."
)
console = Console(stderr=True)
out = Console()

ConfigOpt = Annotated[str | None, typer.Option("--config", "-c", help="Path to relaygate.yaml.")]


def _fail(problems: list[str]) -> None:
    for line in problems:
        console.print(f"[red]✗[/red] {escape(line)}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


@app.command()
def serve(
    config: ConfigOpt = None,
    host: Annotated[str | None, typer.Option(help="Bind address (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8080).")] = None,
    workers: Annotated[int, typer.Option(help="Worker processes sharing the port.")] = 1,
    log_level: Annotated[str, typer.Option(help="debug, info, warning, error.")] = "info",
) -> None:
    """Run the gateway. Without --config: providers auto-detected from env vars."""
    import uvicorn

    from relaygate.logsink import BatchingStreamHandler
    from relaygate.server.app import build_asgi
    from relaygate.server.factory import load_gateway
    from relaygate.server.protocol import uvicorn_options

    # One write per batch of lines, not per request (the access log); the format uses no
    # thread or process fields, so records need not look them up.
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    logging.basicConfig(
        level=log_level.upper(),
        format="%(levelname)s %(name)s: %(message)s",
        handlers=[BatchingStreamHandler(sys.stderr)],
    )
    try:
        gateway = load_gateway(config)
    except ConfigError as exc:
        _fail(exc.problems)
        return
    cfg = gateway.config
    bind_host = host or cfg.server.host
    bind_port = port if port is not None else cfg.server.port
    if not gateway.backends:
        console.print(
            "[yellow]No providers configured.[/yellow] Export a key such as OPENAI_API_KEY, "
            "ANTHROPIC_API_KEY or GEMINI_API_KEY, install the local model with "
            "`pip install 'relaygate\\[local]'`, or pass --config relaygate.yaml (see README)."
        )
    else:
        console.print(
            f"backends: {', '.join(f'{b.id} ({b.kind})' for b in gateway.backends.values())}"
        )
    console.print(f"relaygate {__version__} listening on http://{bind_host}:{bind_port}")
    common = dict(
        host=bind_host,
        port=bind_port,
        log_level=log_level,
        lifespan="on",
        **uvicorn_options(),
        timeout_graceful_shutdown=int(cfg.server.shutdown_grace_seconds) or None,
    )
    if workers > 1:
        if config:
            os.environ["RELAYGATE_CONFIG"] = os.path.abspath(config)
        # One loop guard for every worker, so a request looping back through a sibling is refused.
        os.environ.setdefault("RELAYGATE_LOOP_GUARD", os.urandom(16).hex())
        uvicorn.run("relaygate.server.factory:create_app", factory=True, workers=workers, **common)  # type: ignore[arg-type]
        return
    asgi, inner = build_asgi(gateway, server=True)

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            inner.drain()  # new generation requests get 503 while in-flight streams finish
            super().handle_exit(sig, frame)

    Server(uvicorn.Config(asgi, **common)).run()  # type: ignore[arg-type]


@app.command("check-config")
def check_config(
    config: Annotated[str, typer.Option("--config", "-c", help="Path to relaygate.yaml.")],
) -> None:
    """Validate a config: exit 0 when valid, 1 with one line per problem."""
    from relaygate.backends.registry import load_registry
    from relaygate.config import load_config
    from relaygate.gateway import validate
    from relaygate.hooks import make_plugin_manager

    try:
        cfg = load_config(config)
    except ConfigError as exc:
        _fail(exc.problems)
        return
    problems, _ = validate(cfg, load_registry(make_plugin_manager()))
    if problems:
        _fail(problems)
    out.print(
        f"[green]✓[/green] {config} is valid ({len(cfg.plugins.backends)} backends, {len(cfg.routes)} routes)",
        highlight=False,
        soft_wrap=True,
    )


@app.command()
def models(config: ConfigOpt = None) -> None:
    """List the model inventory (discovering remote models)."""
    from relaygate.server.factory import load_gateway

    try:
        gateway = load_gateway(config)
    except ConfigError as exc:
        _fail(exc.problems)
        return

    async def run() -> None:
        with console.status(f"discovering models from {len(gateway.backends)} backends…"):
            await gateway.discover()
        await gateway.aclose()

    asyncio.run(run())
    table = Table("model", "backend", "native id", "name")
    for m in gateway.models:
        table.add_row(m.id, m.backend, m.native_id, m.display_name or "")
    for route in gateway.config.routes:
        table.add_row(route.name, "route", route.strategy, ", ".join(route.targets))
    out.print(table)
    for backend_id, reason in gateway.discovery_errors.items():
        console.print(f"[yellow]![/yellow] {backend_id}: discovery failed — {reason}")


@app.command()
def version() -> None:
    """Print the version."""
    out.print(__version__)


from relaygate.cli_ops import register as _register_ops  # noqa: E402

_register_ops(app)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
