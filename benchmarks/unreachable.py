"""How long a full `armswatch run` takes on a machine without network (issue 20.1: within 60 s, exit 3, one line
per unreachable host). Asserts nothing; prints the median of RUNS runs.

  .venv/bin/python benchmarks/unreachable.py

Each run is the real CLI with its temporary Prefect server, live URLs (no mirror), into a fresh warehouse, with
benchmarks/offline/ on PYTHONPATH: its sitecustomize.py makes every name but loopback's unresolvable.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path

from recorded import CLI, ENV, PROJECT

OFFLINE = Path(__file__).resolve().parent / "offline"
RUNS = 3


def run(warehouse: Path) -> tuple[float, int, list[str]]:
    """Wall seconds, exit code and the lines naming an unreachable host, of one run."""
    env = {**ENV, "PYTHONPATH": str(OFFLINE)}
    start = time.perf_counter()
    done = subprocess.run([str(CLI), "run", "--warehouse", str(warehouse)], env=env, capture_output=True, text=True,
                          cwd=PROJECT)
    lines = [line for line in done.stderr.splitlines() if "is unreachable:" in line]
    return time.perf_counter() - start, done.returncode, lines


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="armswatch-offline-") as scratch:
        runs = sorted(run(Path(scratch) / f"w{i}") for i in range(RUNS))
    wall, code, lines = runs[len(runs) // 2]
    print(f"full run without network: {wall:.1f} s (median of {RUNS}; all: "
          f"{', '.join(f'{r[0]:.1f}' for r in runs)}), exit code {code}, {len(lines)} unreachable-host lines")
    for line in lines:
        print("  " + line.split(" - ", 1)[-1])


if __name__ == "__main__":
    main()
