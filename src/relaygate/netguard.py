"""SSRF guard for base URLs registered at run time (the admin API, :class:`ProviderManager`).

Link-local and cloud-metadata addresses are refused unless ``security.allow_hosts`` lists the
host; private and loopback ranges are refused only with ``security.allow_private: false``
(local model servers usually live there). The host is resolved and *every* address checked.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from relaygate.config import Config, pydantic_problems

METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata", "instance-data"})
METADATA_IPS = frozenset(
    {
        ipaddress.ip_address("169.254.169.254"),
        ipaddress.ip_address("fd00:ec2::254"),
        ipaddress.ip_address("100.100.100.200"),
    }
)


class SecurityConfig(BaseModel):
    """The ``security:`` section of relaygate.yaml."""

    model_config = ConfigDict(extra="forbid")
    allow_hosts: list[str] = Field(default_factory=list)
    allow_private: bool = True


def problems(config: Config) -> list[str]:
    """The ``security:`` section's problems, one line each."""
    try:
        parsed = SecurityConfig.model_validate(config.security)
    except ValidationError as exc:
        return pydantic_problems(exc, config.security, "security")
    return [
        f"security.allow_hosts[{i}]: {host!r} is not a host name — give a bare host such as "
        "metadata.internal (no scheme, port or path)"
        for i, host in enumerate(parsed.allow_hosts)
        if not host or any(c in host for c in "/@ ") or host.count(":") == 1
    ]


class UnsafeURL(ValueError):
    """The URL points somewhere a registered provider must not."""


def _blocked(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, allow_private: bool) -> str | None:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip in METADATA_IPS:
        return "a cloud metadata address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_unspecified or ip.is_multicast or ip.is_reserved:
        return "an unroutable address"
    if not allow_private and (ip.is_private or ip.is_loopback):
        return "a private address (security.allow_private is false)"
    return None


async def check_base_url(url: str, security: dict[str, Any] | None = None) -> None:
    """Raise :class:`UnsafeURL` with the reason when ``url`` must not be registered."""
    settings = SecurityConfig.model_validate(security or {})
    allow_hosts = {h.lower() for h in settings.allow_hosts}
    allow_private = settings.allow_private
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise UnsafeURL(f"base_url must be http:// or https://, not {parts.scheme or 'nothing'}://")
    host = (parts.hostname or "").lower()
    if not host:
        raise UnsafeURL("base_url has no host")
    if parts.username or parts.password:
        raise UnsafeURL("base_url must not carry credentials; send the key as api_key")
    if host in allow_hosts:
        return
    if host in METADATA_HOSTS:
        raise UnsafeURL(
            f"{host} is a cloud metadata host — add it to security.allow_hosts to allow it"
        )
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, parts.port or 443, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise UnsafeURL(f"cannot resolve {host}: {exc.strerror or exc}") from None
        addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    for ip in addresses:
        reason = _blocked(ip, allow_private)
        if reason:
            raise UnsafeURL(
                f"{host} resolves to {ip}, {reason} — add {host} to security.allow_hosts to allow it"
            )
