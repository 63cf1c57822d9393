"""Kernel-enforced egress for researchers' notebooks (embedded setup): an nftables table.

Every researcher's system account has the shared group `<prefix>researchers` as its *primary*
group. nftables' `meta skgid` compares the socket owner's filesystem gid, which is the primary
(or a setgid program's) group, never a supplementary one: a supplementary group would not match.
The spawner also sets `no_new_privs`, so no setgid program can move a notebook's sockets to
another group.

The table's output chain sends sockets of that group to a chain that accepts TCP replies
(`ct state established`; not UDP, whose conntrack "flows" a notebook could inherit from another
process's finished exchange by binding its port), accepts new TCP connections to the allowed
endpoints only (the tre API and the hub's own API, which the single-user server must reach),
and rejects everything else, IPv4 and IPv6, loopback included, UDP (DNS) included: TCP gets a reset (the kernel sees
"Connection refused" at once) and anything else an ICMP "administratively prohibited" (a UDP
send fails with "Operation not permitted"). Incoming connections (the proxy reaching the
single-user server) are answered: their replies are `established`, and a SYN-ACK's socket is
not a full socket, so it never matches `meta skgid` at all.

The table is replaced atomically (one `nft -f` transaction) and holds nothing but tre's rules.
"""

from __future__ import annotations

import ipaddress
import shutil
import socket
import subprocess
from dataclasses import dataclass
from urllib.parse import urlsplit

DEFAULT_TABLE = "tre_workspace"


class EgressError(RuntimeError):
    """The egress rule could not be installed or removed (the message says what to do)."""


@dataclass(frozen=True)
class Endpoint:
    """One address and TCP port a notebook may open connections to."""

    address: str  # a literal IPv4 or IPv6 address
    port: int

    def __post_init__(self) -> None:
        ipaddress.ip_address(self.address)  # ValueError for anything but a literal address
        if not 0 < self.port < 65536:
            raise ValueError(f"not a TCP port: {self.port}")

    @property
    def family(self) -> str:
        """`ip` or `ip6`, as nft names the address family."""
        return "ip6" if ipaddress.ip_address(self.address).version == 6 else "ip"


@dataclass(frozen=True)
class EgressPolicy:
    """Which sockets are confined (by group id) and where they may connect."""

    table: str
    gid: int
    allowed: tuple[Endpoint, ...]

    def __post_init__(self) -> None:
        if not self.table.replace("_", "").isalnum() or not self.table[0].isalpha():
            raise ValueError(f"not an nft table name: {self.table!r}")
        if self.gid <= 0:
            raise ValueError("the researchers' group must not be root's")


def endpoints(host_ports: list[tuple[str, int]]) -> tuple[Endpoint, ...]:
    """Resolve (host, port) pairs to every address they name, sorted and without duplicates."""
    found: set[Endpoint] = set()
    for host, port in host_ports:
        try:
            infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
        except socket.gaierror as exc:
            raise EgressError(
                f"cannot resolve {host!r} for the notebook egress rule ({exc.strerror})"
            ) from None
        for info in infos:
            found.add(Endpoint(str(info[4][0]).split("%")[0], port))
    return tuple(sorted(found, key=lambda e: (e.family, e.address, e.port)))


def url_endpoint(url: str) -> tuple[str, int]:
    """(host, port) of an http(s) URL, with the scheme's default port."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)


def ruleset(policy: EgressPolicy) -> str:
    """The nft script that (re)creates the table in one transaction."""
    t = policy.table
    allow = "".join(
        f"\t\t{e.family} daddr {e.address} tcp dport {e.port} accept\n" for e in policy.allowed
    )
    return (
        # Declaring the table first makes the delete valid when it does not exist yet.
        f"table inet {t}\n"
        f"delete table inet {t}\n"
        f"table inet {t} {{\n"
        "\tchain output {\n"
        "\t\ttype filter hook output priority filter; policy accept;\n"
        f"\t\tmeta skgid {policy.gid} jump researchers\n"
        "\t}\n"
        "\tchain researchers {\n"
        # Replies on TCP connections only: a UDP "flow" can be stale (another process's
        # exchange, its port then reused by a notebook), and notebooks need no UDP at all.
        "\t\tmeta l4proto tcp ct state established accept\n"
        f"{allow}"
        "\t\tmeta l4proto tcp reject with tcp reset\n"
        "\t\treject with icmpx type admin-prohibited\n"
        "\t}\n"
        "}\n"
    )


def removal(table: str) -> str:
    """The nft script that removes the table (and nothing else), present or not."""
    return f"table inet {table}\ndelete table inet {table}\n"


def nft_path() -> str | None:
    """The nft program, if installed."""
    return shutil.which("nft") or next(
        (p for p in ("/usr/sbin/nft", "/sbin/nft") if shutil.which(p)), None
    )


def _run_nft(script: str, doing: str) -> None:
    nft = nft_path()
    if nft is None:
        raise EgressError(
            f"cannot {doing}: the `nft` program is missing (install the nftables package, "
            "e.g. `apt-get install nftables`)"
        )
    try:
        done = subprocess.run(  # noqa: S603 (fixed program, script generated from typed values)
            [nft, "-f", "-"], input=script, text=True, capture_output=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EgressError(f"cannot {doing}: running nft failed ({type(exc).__name__})") from None
    if done.returncode != 0:
        detail = " ".join(done.stderr.split())[:300] or f"exit status {done.returncode}"
        raise EgressError(
            f"cannot {doing}: nft refused ({detail}); it needs root with CAP_NET_ADMIN and "
            "a kernel with nf_tables"
        )


def install(policy: EgressPolicy) -> None:
    """Create or atomically replace the policy's table."""
    _run_nft(ruleset(policy), "install the notebook network rule")


def remove(table: str) -> None:
    """Remove the table if it is there."""
    _run_nft(removal(table), "remove the notebook network rule")


def installed(table: str) -> str | None:
    """The table as nft lists it, or None when absent (or nft unusable)."""
    nft = nft_path()
    if nft is None:
        return None
    done = subprocess.run(  # noqa: S603 (fixed program and arguments)
        [nft, "list", "table", "inet", table], capture_output=True, text=True, check=False
    )
    return done.stdout if done.returncode == 0 else None
