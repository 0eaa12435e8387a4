"""Errors every stage raises: each names the source, the URL (without credentials) and what was wrong; and the
one bounded excerpt (of a response body, or of any value) a message may quote."""

import reprlib

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


#: Longest excerpt any message carries (the summary, a quarantine reason, an alert, a log line, a configuration
#: error).
EXCERPT_CHARS = 80
#: How values other than bodies are quoted: a bounded prefix of each, two levels deep, whatever their size.
_QUOTE = reprlib.Repr()
_QUOTE.maxlevel, _QUOTE.maxstring, _QUOTE.maxlong, _QUOTE.maxother = 2, EXCERPT_CHARS, 40, EXCERPT_CHARS
_QUOTE.maxtuple = _QUOTE.maxlist = _QUOTE.maxarray = _QUOTE.maxdict = _QUOTE.maxset = _QUOTE.maxfrozenset = 20
_QUOTE.maxdeque = 20


def excerpt(value, limit: int = EXCERPT_CHARS, quoted: bool = True) -> str:
    """A short, printable excerpt for a message, built from a bounded prefix (never the whole value): a response
    body (bytes), or a str that is not to be `quoted` (text already written for people, such as a failing
    expectation's observed value), as text, whitespace runs as one space; any other value quoted as repr quotes it
    (a str in quotes, a list or mapping by its first items, two levels deep: an alias bomb is never expanded).
    Characters that are not printable are escaped (`\\x1b`, `\\u202e`); at most `limit` characters (`...` marks a
    cut)."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        text = _printable(bytes(value[: limit * 4]).decode("utf-8", "replace")) or "(empty body)"
    elif isinstance(value, str) and not quoted:
        text = _printable(value[: limit * 4])
    else:
        text = repr(value[: limit + 1]) if isinstance(value, str) else _QUOTE.repr(value)
    return text[: limit - 3] + "..." if len(text) > limit else text


def _printable(text: str) -> str:
    """`text` with whitespace runs as one space and characters that are not printable escaped."""
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in " ".join(text.split()))
