"""Speed and memory figures for armswatch on the recorded data in ../shared/data. Prints figures; asserts nothing.

  .venv/bin/python benchmarks/pipeline.py

- parse: the 35 MTDSG documents, each IAFQ release, all SDG pages (best of 3, in process);
- run: `armswatch run` over the mirror into a fresh warehouse, then again unchanged (wall time, peak RSS);
- scale: a 350-treaty catalog (the 35 documents served under 10 ids each) through `--only treaties`.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
SHARED = PROJECT.parent / "shared" / "data"
sys.path.insert(0, str(PROJECT))

from tasks import sdg, unodc, untc  # noqa: E402


def best_of(n: int, fn) -> float:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def run_cli(*args: str) -> tuple[float, float, int]:
    """Wall seconds, peak RSS (MiB) of the child, exit code."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    code = subprocess.run([str(PROJECT / ".venv/bin/armswatch"), *args], capture_output=True).returncode
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return time.perf_counter() - start, max(peak, before) / 1024, code


def main() -> None:
    docs = sorted((SHARED / "untc/mtdsg-2018-01-15").glob("*.en.xml"))
    bodies = [(d.name.removesuffix(".en.xml"), d.read_bytes()) for d in docs]
    t = best_of(3, lambda: [untc.parse_document(b, "u", i, None) for i, b in bodies])
    print(f"parse   MTDSG: {len(bodies)} documents, {sum(len(b) for _, b in bodies) / 1e6:.1f} MB in {t:.3f} s")
    for release in sorted((SHARED / "unodc/iafq").iterdir()):
        body = (release / "data_iafq_firearms_trafficking.xlsx").read_bytes()
        rows = unodc.seizures(body, "u").num_rows
        t = best_of(3, lambda: unodc.seizures(body, "u"))
        print(f"parse   IAFQ {release.name}: {rows} rows in {t:.3f} s")
    for series in ("VC_ARM_SZTRACE", "VC_IHR_PSRC"):
        pages = [(str(p), p.read_bytes()) for p in sorted((SHARED / "sdg" / series).glob("Series_Data_page*.json"))]
        now = datetime.now(timezone.utc)
        t = best_of(3, lambda: sdg.observations(pages, "r", now))
        print(f"parse   SDG {series}: {sdg.observations(pages, 'r', now).num_rows} rows in {t:.3f} s")

    with tempfile.TemporaryDirectory() as tmp:
        wh = Path(tmp) / "wh"
        for label in ("first run", "rerun, unchanged"):
            wall, rss, code = run_cli("run", "--mirror", str(SHARED), "--warehouse", str(wh))
            print(f"run     full refresh, {label}: {wall:.1f} s wall, peak RSS {rss:.0f} MiB, exit {code}")

        mirror, catalog = Path(tmp) / "mirror", Path(tmp) / "catalog.yaml"
        mirror.mkdir()
        entries, lines = [], []
        for copy in range(10):
            for mtdsg_no, _ in bodies:
                chapter, rest = mtdsg_no.split("-", 1)
                fake = f"{chapter}-{100 * (copy + 1) + int(rest.split('-')[0])}{rest[len(rest.split('-')[0]):]}"
                entries.append({"url": untc.mtdsg_url(fake), "file": str(SHARED / "untc/mtdsg-2018-01-15" / f"{mtdsg_no}.en.xml")})
                lines.append(f"- {{id: {fake}, short_name: copy of {mtdsg_no}}}")
        (mirror / "manifest.json").write_text(json.dumps(entries))
        catalog.write_text("\n".join(lines) + "\n")
        wall, rss, code = run_cli("run", "--only", "treaties", "--mirror", str(mirror), "--treaties", str(catalog),
                                  "--warehouse", str(Path(tmp) / "wh350"))
        print(f"scale   {len(lines)}-treaty catalog, treaties flow: {wall:.1f} s wall, peak RSS {rss:.0f} MiB, "
              f"exit {code} (1 expected: the header-only documents are quarantined)")


if __name__ == "__main__":
    main()
