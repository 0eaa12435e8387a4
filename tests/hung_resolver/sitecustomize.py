"""A resolver that never answers, for tests/test_network.py: with this folder on PYTHONPATH, socket.getaddrinfo of
any name but loopback's and numeric addresses blocks (HANG seconds, then fails as a resolver that gave up does), and
says `lookup: <name>` on stderr as it starts, so a test can count the lookups."""

import ipaddress
import socket
import sys
import threading

_resolve = socket.getaddrinfo
LOOPBACK = ("localhost", b"localhost")
HANG = 30.0


def _numeric(host) -> bool:
    try:
        ipaddress.ip_address(host.decode() if isinstance(host, bytes) else host)
    except ValueError:
        return False
    return True


def _hung(host, *args, **kwargs):
    if host is None or host in LOOPBACK or _numeric(host):
        return _resolve(host, *args, **kwargs)
    print(f"lookup: {host}", file=sys.stderr, flush=True)
    threading.Event().wait(HANG)
    raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")


socket.getaddrinfo = _hung
