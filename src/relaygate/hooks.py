"""pluggy hook specifications. Plugins are found through the ``relaygate`` entry-point group.

A plugin is a module (or object) with functions named after these hooks, decorated with
:data:`hookimpl`::

    from relaygate.hooks import hookimpl

    @hookimpl
    def register_backend_kinds(register):
        register(BackendKind(name="my-kind", factory=MyBackend.build, options=MyOptions))
"""

from __future__ import annotations

from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("relaygate")
hookimpl = pluggy.HookimplMarker("relaygate")


class Hooks:
    @hookspec
    def register_backend_kinds(self, register: Any) -> None:
        """Call ``register(BackendKind(...))`` for each backend kind the plugin provides."""

    @hookspec
    def before_request(self, ctx: Any) -> None:
        """Called with the :class:`relaygate.server.pipeline.RequestInfo` before routing. May
        modify ``ctx.body`` / ``ctx.model`` or raise :class:`relaygate.canonical.GatewayError`
        to reject the request (rendered in the client's dialect)."""

    @hookspec
    def on_route_selected(self, ctx: Any, plan: Any) -> None:
        """Called once the model selector has been resolved to a plan."""

    @hookspec
    def after_response(self, ctx: Any, record: Any) -> None:
        """Called when a request has finished with its usage record."""

    @hookspec
    def on_error(self, ctx: Any, error: Any) -> None:
        """Called when a request ends in an error."""


def make_plugin_manager(load_entrypoints: bool = True) -> pluggy.PluginManager:
    pm = pluggy.PluginManager("relaygate")
    pm.add_hookspecs(Hooks)
    from relaygate.backends import builtin

    pm.register(builtin, name="relaygate.builtin")
    if load_entrypoints:
        pm.load_setuptools_entrypoints("relaygate")
    return pm
