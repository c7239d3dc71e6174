"""Every OpenAI-compatible data row and the custom-compatible kind's config rules."""

from __future__ import annotations

import pytest

from relaygate.backends.base import CallContext
from relaygate.backends.compat import PROVIDERS
from relaygate.backends.registry import load_registry
from relaygate.canonical import Message, Request, Role, TextPart
from relaygate.config import ConfigError, parse_config
from relaygate.gateway import build_gateway, validate
from relaygate.hooks import make_plugin_manager
from relaygate.testing import OpenAIEmulator


@pytest.mark.parametrize("row", PROVIDERS, ids=[r.name for r in PROVIDERS])
async def test_row_against_emulator(row: object) -> None:
    from relaygate.backends.compat import CompatProvider

    assert isinstance(row, CompatProvider)
    assert row.base_url.endswith("/v1") and row.key_env and row.key_env.endswith("_API_KEY")
    key = f"{row.name}-key-123456"
    async with OpenAIEmulator(api_key=key) as emu:
        env = {row.key_env: key}
        cfg = parse_config(
            {
                "plugins": {
                    "backends": [
                        {
                            "id": row.name,
                            "kind": row.name,
                            "config": {"base_url": emu.base_url + "/v1"},
                        }
                    ]
                }
            },
            env=env,
        )
        gw = build_gateway(cfg, env=env)
        backend = gw.backends[row.name]
        assert backend.prefix == row.name
        models = await gw.discover()
        assert f"{row.name}/gpt-4o-mini" in {m.id for m in models}
        request = Request(model="m", messages=[Message(Role.USER, [TextPart("hi")])])
        response = await backend.complete(request, "gpt-4o-mini", CallContext(request_id="r"))
        assert response.text() == "echo: hi"
        assert emu.requests[-1].headers["authorization"] == f"Bearer {key}"
        await gw.aclose()


def _problems(backends: list[dict[str, object]], env: dict[str, str] | None = None) -> list[str]:
    cfg = parse_config({"plugins": {"backends": backends}}, env=env or {})
    problems, _ = validate(cfg, load_registry(make_plugin_manager()), env or {})
    return problems


def _custom(bid: str, **config: object) -> dict[str, object]:
    return {
        "id": bid,
        "kind": "custom-openai-legacy-compatible",
        "config": {"base_url": "http://x/v1", "api_key": "k", **config},
    }


def test_backend_prefix_rules() -> None:
    assert _problems([_custom("a", backend_prefix="prov")]) == []
    for bad, needle in (
        ("", "required"),
        ("a/b", "must not contain"),
        ("a:b", "must not contain"),
        ("ollama", "reserved"),
        ("cli-claude", "reserved"),
    ):
        problems = _problems([_custom("a", backend_prefix=bad)])
        assert any(
            "plugins.backends[0] (a).config.backend_prefix" in p and needle in p for p in problems
        ), problems
    problems = _problems([_custom("a", backend_prefix="same"), _custom("b", backend_prefix="same")])
    assert any("already used by backend 'a'" in p for p in problems)
    # a disabled duplicate is fine
    disabled = _custom("b", backend_prefix="same")
    disabled["enabled"] = False
    assert _problems([_custom("a", backend_prefix="same"), disabled]) == []


def test_missing_base_url_unknown_kind_unset_env() -> None:
    problems = _problems(
        [
            {
                "id": "c",
                "kind": "custom-openai-legacy-compatible",
                "config": {"backend_prefix": "c", "api_key": "k"},
            }
        ]
    )
    assert any("(c).config.base_url: required" in p for p in problems)
    problems = _problems([{"id": "d", "kind": "cli-claud", "config": {}}])
    assert any("(d).kind: unknown kind 'cli-claud'" in p and "cli-claude" in p for p in problems)
    problems = _problems(
        [_custom("e", backend_prefix="e", api_key=None, api_key_env_var_root="PROV_KEY")]
    )
    assert any(
        "(e).config.api_key_env_var_root: environment variable PROV_KEY is not set" in p
        for p in problems
    )
    with pytest.raises(ConfigError):
        build_gateway(
            parse_config({"plugins": {"backends": [{"id": "d", "kind": "nope"}]}}, env={}), env={}
        )


def test_key_precedence_and_numbered_env() -> None:
    from relaygate.backends.base import HttpOptions

    env = {"ROOT": "k1", "ROOT_2": "k2", "ROOT_3": "k3", "ROOT_5": "k5"}
    assert HttpOptions(api_key_env_var_root="ROOT").resolve_keys(env) == ["k1", "k2", "k3"]
    assert HttpOptions(api_key="a", api_key_env_var_root="ROOT").resolve_keys(env) == ["a"]
    assert HttpOptions(api_keys=["b", "c"], api_key="a").resolve_keys(env) == ["b", "c"]
    assert HttpOptions(credentials={"api_key": "z"}, api_keys=["b"]).resolve_keys(env) == ["z"]
