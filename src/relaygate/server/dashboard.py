"""``/dashboard``: a static page (HTML, CSS, a little JS; no build step) that reads the admin
API — providers with breaker and health state, the usage summary, virtual keys — with the master
key the user pastes, kept in the tab's ``sessionStorage``. The page itself holds nothing secret,
so it is served without auth; every number on it comes from the guarded ``/api/`` endpoints."""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

if TYPE_CHECKING:
    from relaygate.server.app import RelayApp

ASSETS = {
    "dashboard.html": "text/html; charset=utf-8",
    "dashboard.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
}
HEADERS = {
    "cache-control": "no-store",
    "content-security-policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


def _load() -> dict[str, bytes]:
    static = resources.files("relaygate.server").joinpath("static")
    return {name: static.joinpath(name).read_bytes() for name in ASSETS}


def install(app: RelayApp) -> None:
    assets = _load()

    def asset(name: str) -> Route:
        body = assets[name]
        media = ASSETS[name]

        async def endpoint(request: Request) -> Response:
            return Response(body, headers=HEADERS, media_type=media)

        path = "/dashboard" if name == "dashboard.html" else f"/dashboard/{name}"
        return Route(path, endpoint, methods=["GET", "HEAD"])

    app.routes.extend(asset(name) for name in ASSETS)
    app.routes.append(
        Route(
            "/dashboard/", lambda r: Response(status_code=307, headers={"location": "/dashboard"})
        )
    )
    app.state.setdefault("public_paths", []).extend(
        ["/dashboard", "/dashboard/", *(f"/dashboard/{n}" for n in ASSETS if n != "dashboard.html")]
    )
