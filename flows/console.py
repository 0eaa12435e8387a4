"""What an operator sees on the console during a CLI run: Prefect's per-task lines and Great Expectations' lines
stay out of it (they remain in Prefect's logs; `--verbose` brings them back), a rich
progress bar per stage (fetch, parse, validate) with counts, and the summary table the CLI prints at the end.
Upstream: none. Tables fed: none.
"""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from tasks.run import STAGES

ENGINE_LINES = ("Finished in state", "Encountered exception", "Crash detected!")


class QuietConsole(logging.Filter):
    """Lets warnings and errors of armswatch itself through; drops Prefect's engine lines, tracebacks and Great
    Expectations' lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        return (record.levelno >= logging.WARNING and not record.exc_info
                and not record.name.startswith("great_expectations")
                and not record.getMessage().startswith(ENGINE_LINES))


def _console_handlers() -> list[logging.Handler]:
    """The console handlers Prefect installed (the API handler keeps every line for Prefect's logs)."""
    return [handler for name in ("", "uvicorn", "fastapi") for handler in logging.getLogger(name).handlers
            if type(handler).__name__ == "PrefectConsoleHandler"]


def quiet_logging() -> None:
    """Filter the console handlers Prefect installed."""
    for handler in _console_handlers():
        if not any(isinstance(f, QuietConsole) for f in handler.filters):
            handler.addFilter(QuietConsole())


class StageBars:
    """One progress bar per stage; totals grow as flows announce work (STAGES.start) and finish it."""

    def __init__(self, console: Console):
        self.progress = Progress(TextColumn("{task.description:<9}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=console)
        self.bars: dict[str, int] = {}
        self.lock = threading.Lock()

    def _bar(self, stage: str) -> int:
        if stage not in self.bars:
            self.bars[stage] = self.progress.add_task(stage, total=0)
        return self.bars[stage]

    def start(self, stage: str, total: int) -> None:
        with self.lock:
            bar = self._bar(stage)
            self.progress.update(bar, total=(self.progress.tasks[bar].total or 0) + total)

    def advance(self, stage: str, done: int = 1) -> None:
        with self.lock:
            bar = self._bar(stage)
            task = self.progress.tasks[bar]
            self.progress.update(bar, completed=task.completed + done,
                                 total=max(task.total or 0, task.completed + done))


@contextmanager
def progress(enabled: bool = True):
    """Show the stage bars on stderr while the body runs. Log lines (warnings, errors) are printed through the bars'
    console meanwhile, above the bars, never into a bar's line."""
    if not enabled:
        yield
        return
    console = Console(stderr=True, markup=False, highlight=False)  # a message's [brackets] are not markup
    bars = StageBars(console)
    handlers = {handler: handler.console for handler in _console_handlers()}
    STAGES.display = bars
    try:
        with bars.progress:
            for handler in handlers:
                handler.console = console
            yield
    finally:
        for handler, own in handlers.items():
            handler.console = own
        STAGES.display = None
