"""Application factory used by ``relaygate serve`` (and by uvicorn workers).

The config path travels in ``RELAYGATE_CONFIG`` so that every worker process builds the same
gateway."""

from __future__ import annotations

import os

from relaygate.backends.registry import load_registry
from relaygate.config import load_config
from relaygate.gateway import Gateway, auto_detect, build_gateway
from relaygate.hooks import make_plugin_manager
from relaygate.server.app import build_asgi
from relaygate.server.http import ASGIApp


def load_gateway(config_path: str | None) -> Gateway:
    if config_path:
        gateway = build_gateway(load_config(config_path))
        gateway.state["config_path"] = os.path.abspath(config_path)  # for config reload
        return gateway
    pm = make_plugin_manager()
    config = auto_detect(load_registry(pm), os.environ)
    return build_gateway(config, pm=pm)


def create_app() -> ASGIApp:
    """``uvicorn --factory relaygate.server.factory:create_app``."""
    app, _ = build_asgi(load_gateway(os.environ.get("RELAYGATE_CONFIG") or None), server=True)
    return app
