"""A fake OAuth 2.0 token endpoint (RFC 6749 §6, refresh_token grant) on loopback.

``POST /token`` with a form body ``grant_type=refresh_token&refresh_token=…[&client_id=…]``
answers ``{"access_token", "token_type": "Bearer", "expires_in"[, "refresh_token"]}`` or the
RFC's error shape ``{"error": "invalid_grant", "error_description": …}`` with status 400 (401 for
a wrong client). ``on_issue`` is called with each new access token, so a test can make an
upstream emulator accept exactly the current token.

Example::

    async with TokenServer(refresh_token="rt-1", on_issue=lambda t: setattr(emu, "api_key", t)) as ts:
        ...  # config.oauth.token_url = ts.token_url
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web


class TokenServer:
    def __init__(
        self,
        *,
        refresh_token: str = "rt-initial",
        client_id: str | None = None,
        client_secret: str | None = None,
        expires_in: int = 3600,
        rotate: bool = False,
        on_issue: Callable[[str], Any] | None = None,
    ) -> None:
        self.valid_refresh = refresh_token
        self.client_id = client_id
        self.client_secret = client_secret
        self.expires_in = expires_in
        self.rotate = rotate
        self.on_issue = on_issue
        self.issued: list[str] = []
        self.forms: list[dict[str, str]] = []
        self.fail_next: int | None = None  # status of a forced failure for the next request
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def token_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/token"

    async def _token(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        self.forms.append(form)
        if self.fail_next is not None:
            status, self.fail_next = self.fail_next, None
            return web.json_response({"error": "temporarily_unavailable"}, status=status)
        if form.get("grant_type") != "refresh_token":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        if self.client_id is not None and (
            form.get("client_id") != self.client_id
            or (self.client_secret is not None and form.get("client_secret") != self.client_secret)
        ):
            return web.json_response(
                {"error": "invalid_client", "error_description": "client authentication failed"},
                status=401,
            )
        if form.get("refresh_token") != self.valid_refresh:
            return web.json_response(
                {"error": "invalid_grant", "error_description": "refresh token expired or revoked"},
                status=400,
            )
        token = f"at-{len(self.issued) + 1}-{self.port}"
        self.issued.append(token)
        answer: dict[str, Any] = {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
        }
        if self.rotate:
            self.valid_refresh = f"rt-{len(self.issued) + 1}"
            answer["refresh_token"] = self.valid_refresh
        if self.on_issue is not None:
            self.on_issue(token)
        return web.json_response(answer)

    async def start(self) -> TokenServer:
        app = web.Application()
        app.router.add_post("/token", self._token)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> TokenServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
