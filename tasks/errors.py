"""Errors every stage raises: each names the source, the URL (without credentials) and what was wrong; and the
one bounded excerpt of a response body any message may quote."""

from tasks.hosts import redact


class ArmswatchError(Exception):
    """Base: a message naming the source, the URL and what was wrong."""

    def __init__(self, source: str, url: str, problem: str):
        url = redact(url)
        super().__init__(f"{source}: {url}: {problem}")
        self.source, self.url, self.problem = source, url, problem


class FetchError(ArmswatchError):
    """The upstream could not be fetched or did not return the expected document.

    `transient` marks failures worth another try (timeouts, 5xx, 429, a broken connection, a maintenance page);
    `retry_after`, the seconds the server asked to wait before it (Retry-After), if it did."""

    def __init__(self, source: str, url: str, problem: str, transient: bool = False, retry_after: float | None = None):
        super().__init__(source, url, problem)
        self.transient, self.retry_after = transient, retry_after


class Unreachable(FetchError):
    """The URL's host cannot be reached at all in this run (its name does not resolve, it refuses connections, no
    route to it): not transient, and every other URL of that host fails at once. `first` marks the failure that
    found it (the one a run reports as its line for that host); `origin` is the host as scheme://host[:port]."""

    def __init__(self, source: str, url: str, problem: str, origin: str, first: bool):
        super().__init__(source, url, problem)
        self.origin, self.first = origin, first


class ParseError(ArmswatchError):
    """The document was fetched but its content is not what the parser expects (schema drift, bad cells)."""


#: Longest excerpt of a response body any message carries (the summary, a quarantine reason, an alert, a log line).
EXCERPT_CHARS = 80


def excerpt(body: bytes, limit: int = EXCERPT_CHARS) -> str:
    """A short, printable excerpt of a response body for a message: whitespace runs as one space, characters that
    are not printable escaped (`\\x1b`, `\\u202e`), at most `limit` characters (`...` marks a cut); never the body."""
    text = " ".join(body[: limit * 4].decode("utf-8", "replace").split())
    printable = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)
    return (printable[: limit - 3] + "..." if len(printable) > limit else printable) or "(empty body)"
