"""Peak memory and time of reading IAFQ workbooks: a generated one-million-row workbook and decompression bombs.
Prints figures; asserts nothing.

  .venv/bin/python benchmarks/workbook.py [ROWS]

Each case runs in a fresh child process (so peak RSS is that case's alone): a genuine workbook of ROWS rows
(default 1,000,000) in the IAFQ layout with shared strings, as UNODC writes it; then bombs whose sheet expands to
250 MB and 2.5 GB from a zip of a few MB, refused from the zip directory by tasks/xlsx.py's caps.
"""

from __future__ import annotations

import resource
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))
sys.path.insert(0, str(PROJECT / "tests"))

from workbooks import bomb, genuine  # noqa: E402  (the generators the tests use)

CHILD = """
import resource, sys, time
from pathlib import Path
sys.path.insert(0, {project!r})
from tasks import unodc
from tasks.errors import ParseError
body = Path({path!r}).read_bytes()
start = time.perf_counter()
try:
    table = unodc.seizures(body, {path!r})
    outcome = (f"{{table.num_rows}} rows, {{table['value_flag'].null_count}} plain values, "
               f"{{table.nbytes / 2**20:.0f}} MiB as Arrow")
except ParseError as exc:
    outcome = f"refused: {{exc.problem}}"
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"{{time.perf_counter() - start:.1f}} s; peak RSS {{peak:.0f}} MiB; {{outcome}}")
"""


def measure(label: str, path: Path) -> None:
    out = subprocess.run([sys.executable, "-c", CHILD.format(project=str(PROJECT), path=str(path))],
                         capture_output=True, text=True)
    print(f"{label} ({path.stat().st_size / 2**20:.1f} MiB zip): {out.stdout.strip() or out.stderr.strip()[-500:]}")


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "genuine.xlsx"
        start = time.perf_counter()
        genuine(path, rows)
        with zipfile.ZipFile(path) as archive:
            sheet = archive.getinfo("xl/worksheets/sheet1.xml")
        print(f"generated {rows:,} rows in {time.perf_counter() - start:.0f} s: sheet "
              f"{sheet.file_size / 2**20:.0f} MiB, {sheet.file_size / sheet.compress_size:.0f}:1")
        measure(f"genuine {rows:,}-row workbook", path)
        path.unlink()
        for size in (250 * 2**20, 2500 * 2**20):
            bomb(path, size)
            measure(f"bomb, sheet of {size / 2**20:,.0f} MiB", path)
            path.unlink()
    print(f"(this process: peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB)")


if __name__ == "__main__":
    main()
