"""How the benchmarks run armswatch: the real CLI of the project's environment (CLI), over the recorded upstream
responses beside the project (SHARED, ../shared/data, given as `--mirror`), with a temporary Prefect server of its
own and no mirror but the one it is given (ENV: this environment without PREFECT_API_URL and ARMSWATCH_MIRROR).
Upstream: none. Tables fed: none.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
SHARED = PROJECT.parent / "shared" / "data"
CLI = PROJECT / ".venv" / "bin" / "armswatch"
ENV = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "ARMSWATCH_MIRROR")}


def children(pid: int) -> list[int]:
    """The processes `pid` started that still run; OSError once `pid` has ended."""
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
