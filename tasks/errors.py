"""Errors every stage raises: each names the source, the URL and what was wrong; `excerpt` quotes what was wrong
within a bounded length."""

import reprlib


class ArmswatchError(Exception):
    """Base: a message naming the source, the URL and what was wrong."""

    def __init__(self, source: str, url: str, problem: str):
        super().__init__(f"{source}: {url}: {problem}")
        self.source, self.url, self.problem = source, url, problem


class FetchError(ArmswatchError):
    """The upstream could not be fetched or did not return the expected document.

    `transient` marks failures worth another try later (unreachable, 5xx, broken connection)."""

    def __init__(self, source: str, url: str, problem: str, transient: bool = False):
        super().__init__(source, url, problem)
        self.transient = transient


class ParseError(ArmswatchError):
    """The document was fetched but its content is not what the parser expects (schema drift, bad cells)."""


#: What an error message may quote of a value: bounded work and length, whatever the value's size or nesting.
_QUOTE = reprlib.Repr()
_QUOTE.maxlevel, _QUOTE.maxstring, _QUOTE.maxlong, _QUOTE.maxother = 2, 80, 40, 80
_QUOTE.maxtuple = _QUOTE.maxlist = _QUOTE.maxarray = _QUOTE.maxdict = _QUOTE.maxset = _QUOTE.maxfrozenset = 20
_QUOTE.maxdeque = 20


def excerpt(value, limit: int = 80) -> str:
    """A short printable quote of `value` for an error message: at most `limit` characters, what is not
    printable escaped as in repr (control characters, bidi overrides), built from a bounded prefix (a huge body, a deeply nested document or
    an alias bomb is never rendered whole). Cut quotes end with `...`."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        value = bytes(value[: limit + 1])
    elif isinstance(value, str):
        value = value[: limit + 1]
    text = repr(value) if isinstance(value, (str, bytes)) else _QUOTE.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
