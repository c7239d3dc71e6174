"""The library API for programs that embed relaygate (the aigate use).

``analyze(prompt)`` and ``analyze_with_roles(system, untrusted_user_content)`` return the model's
answer as text, either in-process (a :class:`~relaygate.gateway.Gateway` built from a config, or
the embedded defaults) or through a running relaygate server (``url=``).

Security invariants:

* trusted instructions go in the system role and untrusted content only in the user role — the
  two are never concatenated here;
* fail closed: an unreachable model, an error answer or an empty answer raises
  :class:`AnalysisError`; nothing here ever returns an empty or made-up answer.

Example::

    from relaygate.analyze import Analyzer

    async with Analyzer.from_config("relaygate.yaml", model="smart") as ai:
        verdict = await ai.analyze_with_roles(SYSTEM_PROMPT, package_source)
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from relaygate.backends.base import CallContext
from relaygate.canonical import GatewayError, Message, Request, Role, TextPart
from relaygate.gateway import Gateway


class AnalysisError(RuntimeError):
    """The model could not give an answer; callers must treat this as a failed analysis."""


class Analyzer:
    """Ask one model (or route) through relaygate and get text back, or an exception."""

    def __init__(
        self,
        gateway: Gateway | None = None,
        *,
        url: str | None = None,
        api_key: str | None = None,
        model: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        timeout: float = 300.0,
    ) -> None:
        if (gateway is None) == (url is None):
            raise ValueError("give exactly one of gateway= (in-process) or url= (a running server)")
        self.gateway = gateway
        self.url = url.rstrip("/") if url else None
        self.api_key = api_key
        self.model = model
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.timeout = timeout
        self._discovered = False

    @classmethod
    def from_config(
        cls, path: str | Path | None = None, *, env: Mapping[str, str] | None = None, **kwargs: Any
    ) -> Analyzer:
        """In-process, from ``relaygate.yaml`` (or the embedded defaults when ``path`` is None)."""
        import os

        from relaygate.backends.registry import load_registry
        from relaygate.config import load_config
        from relaygate.gateway import auto_detect, build_gateway
        from relaygate.hooks import make_plugin_manager

        environ = dict(os.environ if env is None else env)
        if path is not None:
            return cls(build_gateway(load_config(path, environ), env=environ), **kwargs)
        pm = make_plugin_manager()
        config = auto_detect(load_registry(pm), environ)
        return cls(build_gateway(config, env=environ, pm=pm), **kwargs)

    async def __aenter__(self) -> Analyzer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self.gateway is not None:
            await self.gateway.aclose()

    # ------------------------------------------------------------------ public

    async def analyze(self, prompt: str) -> str:
        """One user turn."""
        return await self._ask(None, prompt)

    async def analyze_with_roles(self, system: str, untrusted_user_content: str) -> str:
        """Trusted ``system`` instructions; ``untrusted_user_content`` only ever in the user role."""
        return await self._ask(system, untrusted_user_content)

    # ------------------------------------------------------------------ plumbing

    async def _ask(self, system: str | None, user: str) -> str:
        if self.url is not None:
            text = await self._ask_remote(system, user)
        else:
            text = await self._ask_local(system, user)
        if not text.strip():
            raise AnalysisError("the model returned an empty answer")
        return text

    async def _model(self) -> str:
        assert self.gateway is not None
        if self.model:
            return self.model
        if self.gateway.config.default_model:
            return self.gateway.config.default_model
        if not self._discovered:
            await self.gateway.discover()
            self._discovered = True
        if not self.gateway.models:
            reasons = "; ".join(f"{k}: {v}" for k, v in self.gateway.discovery_errors.items())
            raise AnalysisError(
                "no model available: configure a backend or pass model="
                + (f" ({reasons})" if reasons else "")
            )
        return self.gateway.models[0].id

    async def _ask_local(self, system: str | None, user: str) -> str:
        assert self.gateway is not None
        selector = await self._model()
        try:
            plan = self.gateway.router.resolve(selector)
        except GatewayError as err:
            raise AnalysisError(f"model {selector!r}: {err.message}") from err
        failures: list[str] = []
        for target in plan.targets:  # in order: the first answer wins, like a fallback route
            request = Request(
                model=target.selector,
                messages=[Message(Role.USER, [TextPart(user)])],
                system=[TextPart(system)] if system is not None else [],
                max_tokens=self.max_tokens,
                temperature=self.temperature,
            )
            ctx = CallContext(request_id=f"analyze-{uuid.uuid4().hex[:12]}")
            try:
                response = await target.backend.complete(request, target.native_id, ctx)
            except GatewayError as err:
                failures.append(f"{target.selector}: {err.message}")
                continue
            text = response.text()
            if text.strip():
                return text
            failures.append(f"{target.selector}: empty answer")
        raise AnalysisError("no model answered — " + "; ".join(failures))

    async def _ask_remote(self, system: str | None, user: str) -> str:
        messages = [{"role": "user", "content": user}]
        if system is not None:
            messages.insert(0, {"role": "system", "content": system})
        body: dict[str, Any] = {"model": self.model or "default", "messages": messages}
        if self.max_tokens is not None:
            body["max_tokens"] = self.max_tokens
        if self.temperature is not None:
            body["temperature"] = self.temperature
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout)) as http,
                http.post(
                    f"{self.url}/v1/chat/completions", data=orjson.dumps(body), headers=headers
                ) as resp,
            ):
                raw = await resp.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise AnalysisError(f"relaygate at {self.url} is unreachable: {exc!r}") from exc
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise AnalysisError(
                f"relaygate answered HTTP {resp.status} with a non-JSON body"
            ) from None
        if resp.status != 200:
            message = (data.get("error") or {}).get("message") if isinstance(data, dict) else None
            raise AnalysisError(f"relaygate answered HTTP {resp.status}: {message or 'error'}")
        try:
            content = data["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise AnalysisError("relaygate answered without a message") from None
        return content if isinstance(content, str) else ""


async def analyze(
    prompt: str, *, model: str | None = None, config: str | Path | None = None
) -> str:
    """One-shot :meth:`Analyzer.analyze` in-process (config file or embedded defaults)."""
    async with Analyzer.from_config(config, model=model) as analyzer:
        return await analyzer.analyze(prompt)


async def analyze_with_roles(
    system: str,
    untrusted_user_content: str,
    *,
    model: str | None = None,
    config: str | Path | None = None,
) -> str:
    """One-shot :meth:`Analyzer.analyze_with_roles` in-process."""
    async with Analyzer.from_config(config, model=model) as analyzer:
        return await analyzer.analyze_with_roles(system, untrusted_user_content)


__all__ = ["AnalysisError", "Analyzer", "analyze", "analyze_with_roles"]
