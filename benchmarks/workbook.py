"""Peak memory and time of reading IAFQ workbooks: a generated one-million-row workbook and decompression bombs.
Prints figures; asserts nothing.

  .venv/bin/python benchmarks/workbook.py [ROWS]

Each case runs in a fresh child process (tests/hostile_inputs.py `peak`: the child's own high-water mark, VmHWM,
not ru_maxrss, which Linux carries over from this process at fork): a genuine workbook of ROWS rows
(default 1,000,000) in the IAFQ layout with shared strings, as UNODC writes it; then bombs whose sheet expands to
250 MB and 2.5 GB from a zip of a few MB, refused from the zip directory by tasks/xlsx.py's caps.
"""

from __future__ import annotations

import resource
import sys
import tempfile
import time
import zipfile
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))
sys.path.insert(0, str(PROJECT / "tests"))

from hostile_inputs import peak  # noqa: E402  (a child's own peak RSS, as the tests measure it)
from workbooks import bomb, genuine  # noqa: E402  (the generators the tests use)

#: No address-space limit to speak of: the figures are what reading takes, not a budget.
UNLIMITED_MIB = 2**20

#: Reads the workbook at {path} in the child `peak` starts; its result: seconds taken and what was read.
READ = """
import time
from pathlib import Path
from tasks import unodc
from tasks.errors import ParseError
body = Path({path!r}).read_bytes()
start = time.perf_counter()
try:
    table = unodc.seizures(body, {path!r})
    result = (f"{{table.num_rows}} rows, {{table['value_flag'].null_count}} plain values, "
              f"{{table.nbytes / 2**20:.0f}} MiB as Arrow")
except ParseError as exc:
    result = f"refused: {{exc.problem}}"
result = f"{{time.perf_counter() - start:.1f}} s; {{result}}"
"""


def measure(label: str, path: Path) -> None:
    outcome, peak_mib = peak(READ.format(path=str(path)), limit_mib=UNLIMITED_MIB)
    print(f"{label} ({path.stat().st_size / 2**20:.1f} MiB zip): peak RSS {peak_mib:.0f} MiB; "
          f"{outcome.removeprefix('ok: ')}")


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
