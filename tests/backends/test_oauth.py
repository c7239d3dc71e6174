from __future__ import annotations

import json
import stat
from pathlib import Path

import aiohttp
import pytest
from tests.conftest import serve_gateway

from relaygate.backends.base import CallContext, HttpOptions
from relaygate.backends.oauth import OAuthOptions, OAuthTokenProvider, parse_expiry
from relaygate.backends.openai import OpenAIChatBackend
from relaygate.backends.transport import AiohttpTransport
from relaygate.canonical import ErrorKind, GatewayError, Message, Request, Role, TextPart
from relaygate.testing import OpenAIEmulator
from relaygate.testing.token_server import TokenServer

NOW = 1_800_000_000.0


def _creds(
    path: Path, access: str, expiry: float, refresh: str = "rt-initial", **extra: object
) -> Path:
    path.write_text(
        json.dumps({"access_token": access, "refresh_token": refresh, "expiry": expiry, **extra})
    )
    path.chmod(0o644)
    return path


def _request() -> Request:
    return Request(model="m", messages=[Message(Role.USER, [TextPart("hi")])])


def _backend(
    emu: OpenAIEmulator, ts: TokenServer, creds: Path, **oauth: object
) -> OpenAIChatBackend:
    options = HttpOptions.model_validate(
        {
            "base_url": emu.base_url + "/v1",
            "oauth": {
                "credentials_file": str(creds),
                "token_url": ts.token_url,
                "client_id": "relaygate",
                **oauth,
            },
        }
    )
    backend = OpenAIChatBackend("oa", options)
    assert backend.token_provider is not None
    backend.token_provider.clock = lambda: NOW
    return backend


def test_expiry_formats() -> None:
    assert parse_expiry({"expiry": 12.5}) == 12.5
    assert (
        parse_expiry({"expiry": "2027-01-15T08:00:00Z"}) == 1_800_000_000.0
    )  # 2027-01-15T08:00:00Z
    assert parse_expiry({"expiry_date": 1500}) == 1.5
    assert parse_expiry({}) is None


async def test_refreshes_before_expiry_and_writes_file_back_0600(tmp_path: Path) -> None:
    async with OpenAIEmulator() as emu, TokenServer(client_id="relaygate", rotate=True) as ts:
        ts.on_issue = lambda token: setattr(emu, "api_key", token)
        creds = _creds(tmp_path / "oauth_creds.json", "at-old", NOW + 30, extra_field="kept")
        backend = _backend(emu, ts, creds)
        response = await backend.complete(_request(), "gpt-4o-mini", CallContext(request_id="r"))
        assert response.text() == "echo: hi"
        assert ts.forms == [
            {"grant_type": "refresh_token", "refresh_token": "rt-initial", "client_id": "relaygate"}
        ]
        assert emu.requests[-1].headers["authorization"] == f"Bearer {ts.issued[0]}"
        saved = json.loads(creds.read_text())
        assert saved["access_token"] == ts.issued[0]
        assert saved["refresh_token"] == "rt-2"  # rotated
        assert parse_expiry(saved) == NOW + 3600
        assert saved["extra_field"] == "kept"
        assert stat.S_IMODE(creds.stat().st_mode) == 0o600
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp left
        # still valid: no second refresh
        await backend.complete(_request(), "gpt-4o-mini", CallContext(request_id="r2"))
        assert len(ts.issued) == 1
        await backend.aclose()


async def test_401_refreshes_and_retries_once(tmp_path: Path) -> None:
    async with OpenAIEmulator(api_key="at-revoked-elsewhere") as emu, TokenServer() as ts:
        ts.on_issue = lambda token: setattr(emu, "api_key", token)
        creds = _creds(tmp_path / "c.json", "at-valid-looking", NOW + 3000)
        backend = _backend(emu, ts, creds)
        response = await backend.complete(_request(), "gpt-4o-mini", CallContext(request_id="r"))
        assert response.text() == "echo: hi"
        assert [r.headers["authorization"] for r in emu.requests] == [
            "Bearer at-valid-looking",
            f"Bearer {ts.issued[0]}",
        ]
        # a 401 that persists after the refresh is reported, not retried forever
        emu.api_key = "something-else-entirely"
        ts.on_issue = None  # the fresh token will not be accepted either
        with pytest.raises(GatewayError) as info:
            await backend.complete(_request(), "gpt-4o-mini", CallContext(request_id="r2"))
        assert info.value.kind is ErrorKind.AUTHENTICATION
        assert len(emu.requests) == 4 and len(ts.issued) == 2
        for token in ts.issued:
            assert token not in info.value.message
        await backend.aclose()


async def test_refresh_failure_is_a_clear_auth_error(tmp_path: Path) -> None:
    async with OpenAIEmulator() as emu, TokenServer(refresh_token="rt-other") as ts:
        creds = _creds(tmp_path / "c.json", "at-old", NOW - 10, refresh="rt-revoked-secret")
        backend = _backend(emu, ts, creds)
        with pytest.raises(GatewayError) as info:
            await backend.complete(_request(), "gpt-4o-mini", CallContext(request_id="r"))
        err = info.value
        assert err.kind is ErrorKind.AUTHENTICATION and err.status == 502
        assert "refresh token expired or revoked" in err.message and "sign in again" in err.message
        assert "rt-revoked-secret" not in err.message
        assert emu.requests == []  # never sent a request with an expired token
        await backend.aclose()


async def test_missing_credentials_file(tmp_path: Path) -> None:
    provider = OAuthTokenProvider(
        OAuthOptions(
            credentials_file=str(tmp_path / "nope.json"), token_url="http://127.0.0.1:9/t"
        ),
        AiohttpTransport(),
    )
    with pytest.raises(GatewayError, match="does not exist"):
        await provider.token()


async def test_client_secret_from_env_and_discovery(tmp_path: Path) -> None:
    async with (
        OpenAIEmulator() as emu,
        TokenServer(client_id="relaygate", client_secret="cs-123456") as ts,
    ):
        ts.on_issue = lambda token: setattr(emu, "api_key", token)
        creds = _creds(tmp_path / "c.json", "", 0)
        config = {
            "plugins": {
                "backends": [
                    {
                        "id": "oa",
                        "kind": "custom-openai-legacy-compatible",
                        "config": {
                            "backend_prefix": "oa",
                            "base_url": emu.base_url + "/v1",
                            "oauth": {
                                "credentials_file": str(creds),
                                "token_url": ts.token_url,
                                "client_id": "relaygate",
                                "client_secret_env": "OA_CLIENT_SECRET",
                            },
                        },
                    }
                ]
            }
        }
        async with (
            serve_gateway(config, env={"OA_CLIENT_SECRET": "cs-123456"}) as gw,
            aiohttp.ClientSession() as http,
        ):
            async with http.get(gw.url + "/v1/models") as r:
                assert "oa/gpt-4o-mini" in {m["id"] for m in (await r.json())["data"]}
            async with http.post(
                gw.url + "/v1/chat/completions",
                json={"model": "oa/gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]},
            ) as r:
                assert r.status == 200
        assert ts.forms[0]["client_secret"] == "cs-123456"
        assert len(ts.issued) == 1


def test_bad_oauth_config_names_the_field() -> None:
    from relaygate.config import ConfigError, parse_config
    from relaygate.gateway import build_gateway

    cfg = parse_config(
        {
            "plugins": {
                "backends": [
                    {
                        "id": "oa",
                        "kind": "custom-openai-legacy-compatible",
                        "config": {
                            "backend_prefix": "oa",
                            "base_url": "http://x/v1",
                            "oauth": {"token_url": "http://t", "tokn": 1},
                        },
                    }
                ]
            }
        },
        env={},
    )
    with pytest.raises(ConfigError) as info:
        build_gateway(cfg, env={})
    text = "\n".join(info.value.problems)
    assert (
        "plugins.backends[0] (oa).config.oauth.credentials_file: required field is missing" in text
    )
    assert "config.oauth.tokn: unknown field" in text
