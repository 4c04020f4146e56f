"""Where a webhook may go: http(s) only, and never to a private, loopback, link-local or
otherwise internal address unless ``TEXTBRIDGE_WEBHOOK_ALLOW_PRIVATE`` says so (tests do).
Checked when an endpoint is saved and again before every request, since a name can resolve
elsewhere later."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit


class DestinationRefused(ValueError):
    pass


def check_url(url: str) -> tuple[str, int]:
    """The host and port of a well-formed http(s) URL."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise DestinationRefused(f"url is not a valid URL: {exc}") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DestinationRefused("url must be an http:// or https:// URL with a host")
    if parts.username or parts.password:
        raise DestinationRefused("url must not carry a user name or password")
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


async def check_destination(url: str, *, allow_private: bool) -> None:
    host, port = check_url(url)
    if allow_private:
        return
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise DestinationRefused(f"{host} does not resolve") from exc
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global or address.is_multicast:
            raise DestinationRefused(f"{host} resolves to {address}, a private or internal address")
