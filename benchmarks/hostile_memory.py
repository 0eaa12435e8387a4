"""Peak memory of reading each hostile input of issue 22.4, each in a fresh child process (so the peak RSS is that
input's alone; the run's budget is 1 GiB). Prints figures; asserts nothing.

  .venv/bin/python benchmarks/hostile_memory.py

The inputs are the tests' (tests/hostile_inputs.py): a 1.6 kB workbook whose only cell is at ZZZZZZ4; an IAFQ
workbook whose 20,000 rows each also hold a cell at XFD; a 433-byte alias bomb in treaties.yaml; SDG API pages
served from loopback: 8 full pages (within the series budget, parsed one at a time), 25 full pages (over it), and
8 pages of 60 MB (over the page cap).
"""

from __future__ import annotations

import json
import resource
import sys
import tempfile
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))
sys.path.insert(0, str(PROJECT / "tests"))

from hostile_inputs import (  # noqa: E402  (the generators the tests use)
    bombed_catalog, far_cell_workbook, fetch_and_parse_series, iafq_with_far_cells, peak, sdg_pages, serve)

URL = "https://data.unodc.org/sites/dataportal.unodc.org/files/2026-01/data_iafq_firearms_trafficking.xlsx"


def report(label: str, code: str) -> None:
    outcome, peak_mib = peak(code, timeout=600)
    print(f"{label}: peak RSS {peak_mib:.0f} MiB; {outcome[:160]}", flush=True)


def workbook(path: Path) -> str:
    return (f"from pathlib import Path\nfrom tasks import unodc\n"
            f"rows = unodc.seizures(Path({str(path)!r}).read_bytes(), {URL!r}).num_rows\nresult = f'{{rows}} rows'")


def main() -> None:
    report("baseline: imports only", "import tasks.unodc, tasks.sdg, tasks.catalog\nresult = 'imported'")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name, body in (("ZZZZZZ4", far_cell_workbook("ZZZZZZ4")),
                           ("XFD x 20,000 rows", iafq_with_far_cells(20_000))):
            path = tmp / f"{len(body)}.xlsx"
            path.write_bytes(body)
            report(f"workbook, cell at {name} ({len(body):,} bytes)", workbook(path))
        path = bombed_catalog(tmp / "treaties.yaml")
        report(f"alias bomb in treaties.yaml ({path.stat().st_size} bytes)",
               f"from tasks import catalog\nresult = catalog.load({str(path)!r})")
        for pages in (8, 25):
            answers = sdg_pages("", pages)
            with serve(answers) as base:
                report(f"SDG series of {pages} pages ({sum(map(len, answers.values())) / 2**20:.0f} MiB)",
                       fetch_and_parse_series(base, tmp / f"raw-{pages}"))
        padding = b', "padding": ' + json.dumps(" " * (60 * 2**20)).encode() + b"}"
        answers = {path: body[:-1] + padding if "Series/Data" in path else body
                   for path, body in sdg_pages("", 8).items()}
        with serve(answers) as base:
            report("SDG series of 8 pages of 60 MB", fetch_and_parse_series(base, tmp / "raw-60"))
    print(f"(this process: peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB)")


if __name__ == "__main__":
    main()
