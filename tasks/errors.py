"""Errors every stage raises: each names the source, the URL and what was wrong."""


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
