"""The SSRF guard, in-process with a stub resolver: no test sends traffic anywhere."""

import ipaddress

import pytest

from api.ssrf import (
    BlockedTarget,
    Guard,
    InvalidTarget,
    IPAddress,
    Resolver,
    UnresolvableTarget,
    numeric_ipv4,
)


def stub_resolver(table: dict[str, list[str]]) -> Resolver:
    async def resolve(host: str, port: int) -> list[IPAddress]:
        if host not in table:
            raise OSError("no such host")
        return [ipaddress.ip_address(a) for a in table[host]]

    return resolve


PUBLIC = "93.184.215.14"
guard = Guard(
    resolver=stub_resolver(
        {
            "example.com": [PUBLIC],
            "internal.example": ["10.0.0.5"],
            "mixed.example": [PUBLIC, "127.0.0.1"],  # one bad address is enough to refuse
            "rebind.example": ["169.254.169.254"],
            "v6.example": ["2606:2800:220:1:248:1893:25c8:1946"],
            "empty.example": [],
        }
    )
)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://127.0.0.2:8080/x",
        "http://127.1/",
        "http://2130706433/",
        "http://0x7f000001/",
        "http://0x7f.1/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:7f00:1]/",
        "http://[64:ff9b::a9fe:a9fe]/",  # NAT64 of 169.254.169.254
        "http://[2002:7f00:1::]/",  # 6to4 of 127.0.0.1
        "http://10.1.2.3/",
        "http://172.16.0.1/",
        "http://192.168.1.1/",
        "http://100.64.0.1/",  # CGNAT
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata
        "http://[fd00:ec2::254]/",  # AWS metadata over IPv6 (unique-local)
        "http://[fe80::1]/",
        "http://0.0.0.0/",
        "http://[::]/",
        "http://224.0.0.1/",
        "http://[ff02::1]/",
        "http://240.0.0.1/",  # reserved
        "http://255.255.255.255/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://internal.example/",
        "http://mixed.example/",
        "http://rebind.example/",
    ],
)
async def test_non_public_targets_are_blocked(url: str) -> None:
    with pytest.raises(BlockedTarget):
        await guard.check(url)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/",
        "file:///etc/passwd",
        "gopher://example.com/",
        "http://",
        "not a url",
        "http://" + "a" * 2050 + ".com/",
    ],
)
async def test_unusable_urls_are_invalid(url: str) -> None:
    with pytest.raises(InvalidTarget):
        await guard.check(url)


@pytest.mark.parametrize("url", ["http://nowhere.example/", "http://empty.example/"])
async def test_a_host_that_does_not_resolve_is_told_apart_from_a_bad_url(url: str) -> None:
    with pytest.raises(UnresolvableTarget, match=r"could not be resolved|resolves to no address"):
        await guard.check(url)


async def test_a_public_host_gives_the_address_to_connect_to() -> None:
    target = await guard.check("https://example.com/path?q=1")
    assert (str(target.address), target.url.host) == (PUBLIC, "example.com")
    assert str((await guard.check("http://v6.example/")).address).startswith("2606:")
    assert str((await guard.check("http://8.8.8.8/")).address) == "8.8.8.8"


async def test_the_allowlist_opens_chosen_networks_only() -> None:
    local = Guard(allow=[ipaddress.ip_network("127.0.0.0/8")], resolver=guard.resolver)
    assert str((await local.check("http://127.0.0.1:9000/")).address) == "127.0.0.1"
    with pytest.raises(BlockedTarget):
        await local.check("http://10.0.0.1/")


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("127.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("10.1", "10.0.0.1"),
        ("1.2.3.4", "1.2.3.4"),
    ],
)
def test_numeric_hosts_are_read_as_browsers_read_them(host: str, address: str) -> None:
    assert str(numeric_ipv4(host)) == address


@pytest.mark.parametrize("host", ["example.com", "1.2.3.4.5", "256.1.1.1", "1.2.3.999", "0x1g"])
def test_names_and_impossible_numbers_are_not_addresses(host: str) -> None:
    assert numeric_ipv4(host) is None


async def test_an_octal_spelling_the_url_parser_refuses_is_never_fetched() -> None:
    with pytest.raises((InvalidTarget, BlockedTarget)):
        await guard.check("http://0177.0.0.1/")
