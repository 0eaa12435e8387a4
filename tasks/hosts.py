"""Which hosts a source may fetch from: the origin (scheme, host, port) of a URL, the check of a URL against the
origins a source declares (`hosts:` in sources/<name>.yaml; the treaty catalog's URLs for UNTC), why a URL is
refused, and URLs written without their credentials (a `user:password@` never reaches a log, a batch key or an
error). Pure functions, no I/O. Upstream: none itself (it guards every URL tasks/http.py requests). Tables fed: none.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

SCHEMES = {"http": 80, "https": 443}


def origin(url: str) -> str:
    """`scheme://host[:port]` of an http(s) URL, lowercased, the scheme's default port left out; ValueError naming
    what is wrong for any other URL (another scheme, no host, a bad port)."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise ValueError(f"scheme {scheme or '(none)'!r} is not http or https")
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        raise ValueError("its port is not a number from 0 to 65535") from None
    if not host:
        raise ValueError("it names no host")
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}" + ("" if port in (None, SCHEMES[scheme]) else f":{port}")


def redact(url: str) -> str:
    """The URL without its credentials (`user:password@` becomes `***@`), anything else unchanged."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]))


def refusal(url: str, allowed: frozenset[str] | None) -> str | None:
    """Why `url` must not be requested by a source that declared the origins `allowed` (None: any http(s) origin);
    None when it may be. Credentials in a URL, another scheme and another origin (host or port) are refused."""
    try:
        if "@" in urlsplit(url).netloc:
            return f"{redact(url)} refused: it carries credentials (user:password@)"
        found = origin(url)
    except ValueError as exc:
        return f"{redact(url)} refused: {exc}"
    if allowed is not None and found not in allowed:
        return f"{url} refused: {found} is not among the source's hosts ({', '.join(sorted(allowed))})"
    return None


def origins(urls) -> frozenset[str]:
    """The origins of these URLs (e.g. a source's declared `hosts`), each normalised as `origin` writes it."""
    return frozenset(origin(str(url)) for url in urls)
