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
from xml.sax.saxutils import escape

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))
sys.path.insert(0, str(PROJECT / "tests"))

from test_unodc import _NS, _XLSX_PARTS  # noqa: E402  (the workbook skeleton the tests use)

from tasks.unodc import EXPECTED_COLUMNS  # noqa: E402

COUNTRIES = [("MEX", "Mexico", "Americas", "Latin America and the Caribbean"),
             ("GBR", "United Kingdom", "Europe", "Northern Europe"), ("GBR_E_W", "England and Wales", "Europe",
                                                                     "Northern Europe"),
             ("BRA", "Brazil", "Americas", "Latin America and the Caribbean"), ("ALB", "Albania", "Europe",
                                                                                  "Southern Europe")]
INDICATORS = [("Arms seized", "Total", "Total"), ("Arms seized", "by type", "Pistol"),
              ("Arms found", "by type", "Total"), ("Ammunition seized", "Total", "Total")]


def genuine(path: Path, rows: int) -> None:
    """An IAFQ-shaped workbook of `rows` observations, written as a stream; VALUE numbers, text and censored."""
    strings = ["UNODC", "15/11/2025", *EXPECTED_COLUMNS, "na", "Counts", "IAFQ", "<5", "1,234"]
    strings += sorted({s for c in COUNTRIES for s in c} | {s for i in INDICATORS for s in i})
    index = {s: i for i, s in enumerate(strings)}

    def s(ref: str, text: str) -> str:
        return f'<c r="{ref}" t="s"><v>{index[text]}</v></c>'

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in _XLSX_PARTS.items():
            shared = ('<Override PartName="/xl/sharedStrings.xml" ContentType="application/'
                      'vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/><Default Extension="xml"')
            archive.writestr(name, text.replace('<Default Extension="xml"', shared)
                             if name == "[Content_Types].xml" else text)
        archive.writestr("xl/sharedStrings.xml", f'<sst {_NS} count="{len(strings)}" uniqueCount="{len(strings)}">'
                         + "".join(f"<si><t>{escape(t)}</t></si>" for t in strings) + "</sst>")
        with archive.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as sheet:
            sheet.write(f"<worksheet {_NS}><sheetData>".encode())
            head = [s("A1", "UNODC"), s("A2", "15/11/2025"),
                    "".join(s(f"{chr(65 + i)}3", c) for i, c in enumerate(EXPECTED_COLUMNS))]
            sheet.write("".join(f'<row r="{n}">{cells}</row>' for n, cells in enumerate(head, 1)).encode())
            batch = []
            for n in range(4, rows + 4):
                iso3, country, region, subregion = COUNTRIES[n % len(COUNTRIES)]
                indicator, dimension, category = INDICATORS[n % len(INDICATORS)]
                value = s(f"L{n}", "<5") if n % 97 == 0 else f'<c r="L{n}"><v>{n % 5000}</v></c>'
                year = (f'<c r="J{n}"><v>{2000 + n % 24}</v></c>' if n % 2  # Year as number or as text
                        else f'<c r="J{n}" t="inlineStr"><is><t>{2000 + n % 24}</t></is></c>')
                batch.append(f'<row r="{n}">{s(f"A{n}", iso3)}{s(f"B{n}", country)}{s(f"C{n}", region)}'
                             f'{s(f"D{n}", subregion)}{s(f"E{n}", indicator)}{s(f"F{n}", dimension)}'
                             f'{s(f"G{n}", category)}{s(f"H{n}", "na")}{s(f"I{n}", "na")}{year}'
                             f'{s(f"K{n}", "Counts")}{value}{s(f"M{n}", "IAFQ")}</row>')
                if len(batch) == 10_000:
                    sheet.write("".join(batch).encode())
                    batch = []
            sheet.write(("".join(batch) + "</sheetData></worksheet>").encode())


def bomb(path: Path, sheet_bytes: int) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, text in _XLSX_PARTS.items():
            archive.writestr(name, text)
        with archive.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as sheet:
            sheet.write(f"<worksheet {_NS}><sheetData>".encode())
            chunk = b" " * (16 * 1024 * 1024)
            for _ in range(sheet_bytes // len(chunk)):
                sheet.write(chunk)
            sheet.write(b"</sheetData></worksheet>")


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
