"""The server-side request forgery guard: which URLs the fetcher may reach, and at which address.

A URL passes when its scheme is http or https, and every address its host resolves to is a public
one: not loopback, private, link-local (cloud metadata included), CGNAT, unique-local, multicast,
reserved or unspecified, nor an IPv6 form carrying such an IPv4 address (mapped, 6to4, Teredo,
NAT64). Numeric hosts in any spelling a browser accepts (``127.1``, ``2130706433``, ``0x7f000001``,
``0177.0.0.1``) are read as the addresses they are, never sent to DNS. The caller connects to the
address checked here, not to a name resolved again later (DNS rebinding), and checks every redirect
hop anew. Networks listed in ``allow`` (a setting, empty by default) are let through.
"""

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import httpx2

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]

MAX_URL_LENGTH = 2048
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_METADATA_NAMES = frozenset({"metadata", "metadata.google.internal", "metadata.goog", "instance-data"})


class InvalidTarget(ValueError):
    """Not a URL the fetcher can use (scheme, length, host)."""


class UnresolvableTarget(ValueError):
    """A URL whose host does not resolve (now): nothing to connect to, though the URL may be fine."""


class BlockedTarget(ValueError):
    """A URL whose host is, or resolves to, an address the fetcher must not reach."""


@dataclass(frozen=True, slots=True)
class Target:
    url: httpx2.URL
    address: IPAddress  # what to connect to: the address that was checked


async def system_resolver(host: str, port: int) -> list[IPAddress]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]


def numeric_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """The address a numeric host names, read as the WHATWG URL standard does: one to four parts,
    each decimal, hex (``0x``) or octal (leading ``0``), the last filling the remaining bytes."""
    parts = host.rstrip(".").split(".")
    if not 1 <= len(parts) <= 4:
        return None
    numbers = []
    for part in parts:
        try:
            if part.lower().startswith("0x"):
                numbers.append(int(part[2:] or "0", 16))
            elif len(part) > 1 and part.startswith("0"):
                numbers.append(int(part, 8))
            else:
                numbers.append(int(part, 10))
        except ValueError:
            return None
    *leading, last = numbers
    if any(n > 255 for n in leading) or last >= 256 ** (5 - len(numbers)):
        return None
    value = last
    for index, number in enumerate(leading):
        value += number << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, Teredo client, NAT64), if any."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public(address: IPAddress) -> bool:
    inner = embedded_ipv4(address)
    if inner is not None and not is_public(inner):
        return False
    return address.is_global and not address.is_multicast and address not in _CGNAT


class Guard:
    def __init__(self, allow: Sequence[Network] = (), resolver: Resolver = system_resolver) -> None:
        self.allow = tuple(allow)
        self.resolver = resolver

    def allowed(self, address: IPAddress) -> bool:
        return any(address in network for network in self.allow) or is_public(address)

    async def check(self, raw_url: str) -> Target:
        """The URL and the address to connect to; ``InvalidTarget`` or ``BlockedTarget`` otherwise."""
        if len(raw_url) > MAX_URL_LENGTH:
            raise InvalidTarget(f"The URL is longer than {MAX_URL_LENGTH} characters.")
        try:
            url = httpx2.URL(raw_url)
        except (httpx2.InvalidURL, ValueError) as exc:
            raise InvalidTarget(f"Not a valid URL: {exc}") from None
        if url.scheme not in ("http", "https"):
            raise InvalidTarget("Only http and https URLs can be fetched.")
        host = url.host.rstrip(".").lower()
        if not host:
            raise InvalidTarget("The URL has no host.")
        if host in _METADATA_NAMES:
            raise BlockedTarget(f"{host} is a cloud metadata service.")
        addresses = await self._addresses(host, url.port or (443 if url.scheme == "https" else 80))
        blocked = [a for a in addresses if not self.allowed(a)]
        if blocked:
            raise BlockedTarget(f"{host} is, or resolves to, a non-public address ({blocked[0]}).")
        return Target(url=url, address=addresses[0])

    async def _addresses(self, host: str, port: int) -> list[IPAddress]:
        try:
            return [ipaddress.ip_address(host)]
        except ValueError:
            pass
        if (numeric := numeric_ipv4(host)) is not None:
            return [numeric]
        try:
            addresses = await self.resolver(host, port)
        except OSError as exc:
            raise UnresolvableTarget(f"{host} could not be resolved ({exc}).") from None
        if not addresses:
            raise UnresolvableTarget(f"{host} resolves to no address.")
        return addresses
