"""How long `armswatch run` takes to stop after Ctrl-C or SIGTERM sent to its whole process group (issue 20.2:
within 15 s, exit 4, the summary printed). Asserts nothing; prints one line per signal and moment.

  .venv/bin/python benchmarks/stop.py

Each run is the real CLI, in a session of its own (as a terminal's foreground job), over the recorded mirror in
../shared/data with `--force` into a warehouse published once before, so it fetches, parses, validates and
publishes everything; the signal goes to its process group at a moment of the run (see `reached`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from recorded import CLI, ENV, PROJECT, SHARED, children
from tasks.validate import SERVE

PATTERNS = {"fetch": "_raw/responses/*/*.json", "publish": "_history/*/*/*.parquet"}
STAGES = ("fetch", "parse", "publish")


def reached(stage: str, pid: int, warehouse: Path, before: dict[str, set[Path]]) -> bool:
    """fetch: a response was archived; parse: the validation process was started (a batch is parsed, GX is
    imported there); publish: a data file was written."""
    if stage == "parse":
        try:
            return any(SERVE in Path(f"/proc/{child}/cmdline").read_text(errors="replace") for child in children(pid))
        except OSError:  # the run, or that child, has just ended
            return False
    return bool(set(warehouse.glob(PATTERNS[stage])) - before[stage])


def stop(warehouse: Path, stage: str, signum: int, log: Path) -> tuple[float | None, int, bool]:
    """Seconds from the signal to the exit (None: the run ended before the stage), exit code, summary printed."""
    before = {stage: set(warehouse.glob(pattern)) for stage, pattern in PATTERNS.items()}
    with open(log, "w") as err, open(log.with_suffix(".out"), "w") as out:
        proc = subprocess.Popen([str(CLI), "run", "--force", "--mirror", str(SHARED), "--warehouse", str(warehouse)],
                                env=ENV, cwd=PROJECT, stdout=out, stderr=err, start_new_session=True)
        while proc.poll() is None and not reached(stage, proc.pid, warehouse, before):
            time.sleep(0.02)
        if proc.poll() is not None:
            return None, proc.returncode, False
        sent = time.perf_counter()
        os.killpg(proc.pid, signum)
        code = proc.wait()
        took = time.perf_counter() - sent
    return took, code, "total: " in log.with_suffix(".out").read_text()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        warehouse = Path(tmp) / "wh"
        subprocess.run([str(CLI), "run", "--mirror", str(SHARED), "--warehouse", str(warehouse)], env=ENV,
                       cwd=PROJECT, capture_output=True)
        print(f"{'signal':<8} {'at':<9} {'stopped in':>10} {'exit':>5} {'summary':>8}")
        for signum in (signal.SIGINT, signal.SIGTERM):
            for stage in STAGES:
                took, code, summary = stop(warehouse, stage, signum, Path(tmp) / "err.txt")
                shown = "ended first" if took is None else f"{took:.1f} s"
                print(f"{signum.name:<8} {stage:<9} {shown:>10} {code:>5} {'yes' if summary else 'no':>8}")


if __name__ == "__main__":
    main()
