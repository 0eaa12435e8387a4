"""A machine without network, for benchmarks/unreachable.py and the tests: with this folder on PYTHONPATH, every
name but loopback's fails to resolve at the socket level (socket.getaddrinfo), as it does offline; the temporary
Prefect server on 127.0.0.1 still answers."""

import socket

_resolve = socket.getaddrinfo
LOOPBACK = (None, "localhost", "127.0.0.1", "::1", b"localhost", b"127.0.0.1")


def _offline(host, *args, **kwargs):
    if host in LOOPBACK:
        return _resolve(host, *args, **kwargs)
    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


socket.getaddrinfo = _offline
