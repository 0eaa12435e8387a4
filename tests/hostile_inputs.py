"""Hostile inputs built on the fly for tests/test_hostile_memory.py and benchmarks/hostile_memory.py (issue 22.4),
and the peak memory of a child process that reads one of them.

Each input aims at memory: a workbook of a kilobyte whose only cell lies far to the right, an alias bomb in a
configuration file, SDG API pages each inside the page cap but together far over any sensible budget (served from
loopback by `serve`). `peak(code)` runs `code` in a fresh interpreter (so the peak RSS is that input's alone: the
child's own high-water mark, VmHWM, since Linux carries ru_maxrss over from the parent), with an address-space
limit so that a regression fails with MemoryError instead of taking the machine's memory.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import zipfile
from contextlib import contextmanager
from pathlib import Path

import faults
from tasks.unodc import EXPECTED_COLUMNS
from workbooks import NS, PARTS, xlsx

PROJECT = Path(__file__).resolve().parents[1]
#: The whole run's memory budget under hostile input (issue 22.4).
BUDGET_MIB = 1024

CHILD = """
import json, resource, sys, traceback
resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))
sys.path[:0] = [{project!r}, {tests!r}]
try:
{code}
    outcome = "ok: " + str(result)
except MemoryError:
    outcome = "MemoryError"
except Exception as exc:
    outcome = f"{{type(exc).__name__}}: {{exc}}"
# ru_maxrss keeps the parent's peak across fork and exec on Linux; VmHWM is this process's own
status = open("/proc/self/status").read() if sys.platform == "linux" else ""
hwm = [int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")]
peak_kib = hwm[0] if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"outcome": outcome[:2000], "peak_mib": peak_kib / 1024}}))
"""


def peak(code: str, limit_mib: int = 4096, timeout: float = 300) -> tuple[str, float]:
    """(outcome, peak RSS in MiB) of `code` run in a child interpreter; `code` sets `result` on success. Outcome is
    "ok: <result>", "MemoryError" past `limit_mib` of address space, or "<Exception>: <message>"."""
    body = "\n".join("    " + line for line in code.strip().splitlines())
    child = CHILD.format(limit=limit_mib * 2**20, project=str(PROJECT), tests=str(PROJECT / "tests"), code=body)
    try:
        out = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=timeout,
                             cwd=PROJECT)
    except subprocess.TimeoutExpired:
        return f"no answer within {timeout:.0f} s", float("nan")
    if out.returncode != 0 or not out.stdout.strip():
        return f"child exited {out.returncode}: {out.stderr[-1000:]}", float("nan")
    report = json.loads(out.stdout.strip().splitlines()[-1])
    return report["outcome"], report["peak_mib"]


def sheet_workbook(rows: str) -> bytes:
    """A one-sheet workbook whose sheetData is `rows` (XML, as written)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in PARTS.items():
            archive.writestr(name, text)
        archive.writestr("xl/worksheets/sheet1.xml", f"<worksheet {NS}><sheetData>{rows}</sheetData></worksheet>")
    return out.getvalue()


def far_cell_workbook(ref: str = "ZZZZZZ4") -> bytes:
    """A workbook of about 1 kB whose only cell is at `ref`, in the row its digits name. A reader that pads a row's
    cells up to the column index spends column x 8 bytes on it (ZZZZZZ: 2.5 GB)."""
    return sheet_workbook(f'<row r="{ref[len(ref.rstrip("0123456789")):]}"><c r="{ref}"><v>1</v></c></row>')


def iafq_with_far_cells(rows: int, column: str = "XFD") -> bytes:
    """An IAFQ-shaped workbook of `rows` observations (tests/workbooks.py), each row also holding a cell at
    `column`, beyond the header: harmless to a sparse reader, column x 8 bytes per row to a padding one."""
    observation = ["MEX", "Mexico", "Americas", "Latin America and the Caribbean", "Arms seized", "Total", "Total",
                   "na", "na", 2021, "Counts", 7, "IAFQ"]
    plain = zipfile.ZipFile(io.BytesIO(xlsx([["UNODC"], ["15/11/2025"], list(EXPECTED_COLUMNS)]
                                            + [observation] * rows)))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for item in plain.infolist():
            data = plain.read(item)
            if item.filename == "xl/worksheets/sheet1.xml":
                data = re.sub(rb'<row r="(\d*[4-9]|\d\d+)">(.*?)</row>',  # the data rows, 4 and below
                              lambda m: b'<row r="%s">%s<c r="%s%s"><v>0</v></c></row>'
                              % (m[1], m[2], column.encode(), m[1]), data)
            archive.writestr(item.filename, data)
    return out.getvalue()


def alias_bomb(levels: int = 9) -> str:
    """A YAML flow sequence of a few hundred bytes whose aliases expand to 9**levels strings (billion laughs)."""
    nodes = ['&l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    nodes += [f"&l{n} [{','.join([f'*l{n - 1}'] * 9)}]" for n in range(1, levels)]
    return f"[{', '.join(nodes)}]"


def bombed_catalog(path: Path, levels: int = 9) -> Path:
    """treaties.yaml whose one entry's short_name is an alias bomb: a loader that expands it, or an error message
    that quotes it whole, runs out of memory."""
    path.write_text(f"- id: XXVI-8\n  short_name: {alias_bomb(levels)}\n")
    return path


SDG_SERIES, SDG_INDICATOR = "VC_ARM_SZTRACE", "16.4.2"


def sdg_pages(base: str, pages: int, per_page: int = 10_000) -> dict[str, bytes]:
    """Path and query -> body of an SDG API series of `pages` full pages of `per_page` observations shaped like
    the recorded ones (about 9 MB a page at the largest page size), and its Series/List."""
    recorded = PROJECT.parent / "shared" / "data" / "sdg" / SDG_SERIES
    observation = json.loads((recorded / "Series_Data_page1.json").read_bytes())["data"][0]
    data = json.dumps([observation] * per_page).encode()
    total = pages * per_page
    answers = {f"/Indicator/{SDG_INDICATOR}/Series/List": (recorded / "Indicator_Series_List.json").read_bytes()}
    for n in range(1, pages + 1):
        head = json.dumps({"size": per_page, "totalElements": total, "totalPages": pages, "pageNumber": n})
        answers[f"/Series/Data?seriesCode={SDG_SERIES}&page={n}&pageSize={per_page}"] = (
            head[:-1].encode() + b', "data": ' + data + b"}")
    return answers


@contextmanager
def serve(answers: dict[str, bytes], content_type: str = "application/json"):
    """A loopback HTTP server answering each path and query of `answers` with its body (404 otherwise); yields
    its base URL."""

    class Handler(faults.QuietHandler):
        def do_GET(self):
            body = answers.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

    with faults.running(faults.LoopbackServer(Handler)) as server:
        yield server.base


def fetch_and_parse_series(base: str, archive: Path) -> str:
    """Code for `peak`: the SDG source of the project's sources/sdg.yaml pointed at `base`, fetching and parsing
    its one series as a flow does (archived, then parsed)."""
    return f"""
from tasks import catalog, registry
from tasks.archive import RawArchive
from tasks.http import Fetcher
from tasks.sdg import SdgConfig, SdgSource
from tasks.source import Batch, Client
data = catalog.read_yaml(registry.FOLDER / "sdg.yaml", "source sdg:")
series = dict(code={SDG_SERIES!r}, indicator={SDG_INDICATOR!r}, page_size=10000)
data.update(base={base!r}, hosts=[{base!r}], series=[series])
source = SdgSource(catalog.validate(SdgConfig, data, "sdg.yaml", "source sdg:"))
fetcher = Fetcher(RawArchive({str(archive)!r}))
def get_all(urls, kind, max_bytes=None):
    return [fetcher.get("sdg", url, kind, source.allowed, max_bytes=max_bytes) for url in urls]
client = Client(lambda url, kind, max_bytes=None: get_all([url], kind, max_bytes)[0], get_all)
(batch,), _ = source.batches(client)
(table,) = source.parse(batch, source.fetch(batch, client))[1].values()
result = f"{{table.num_rows}} rows"
"""
