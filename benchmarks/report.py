"""Time and size of the analyst report on the recorded data in ../shared/data, printed. Asserts nothing.

  .venv/bin/python benchmarks/report.py

One `armswatch run` over the recorded mirror into a temporary warehouse, then the report's parts built again from
its armswatch.duckdb, each the best of 3 (wall seconds; the machine is shared): every section of
report/index.html, the page as written, and the 195 state pages with their index. Sizes in KiB.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from recorded import CLI, ENV, SHARED
from tasks import country_pages, duckdb_views, report


def best_of(n: int, fn) -> tuple[float, object]:
    times, out = [], None
    for _ in range(n):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "wh"
        subprocess.run([str(CLI), "run", "--mirror", str(SHARED), "--warehouse", str(root)], env=ENV,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        now = datetime.now(timezone.utc)
        with duckdb_views.connect(root) as con:
            views = report.published_views(con)
            status = report.treaty_status(con)
            sections = {"maps": lambda: report.maps(status),
                        "signed_not_ratified": lambda: report.signed_not_ratified(status)}
            for name in ("parties_per_year", "status_by_region", "seizures", "homicide", "tracing_rates", "revisions"):
                sections[name] = lambda build=getattr(report, name): build(con, views)
            print(f"{'part':<28} {'seconds':>8} {'KiB':>8}")
            for name, build in sections.items():
                seconds, html = best_of(3, build)
                print(f"{name:<28} {seconds:>8.2f} {len(html) / 1024:>8.0f}")
            seconds, page = best_of(3, lambda: report.build(root, con, [], now))
            print(f"{'report/index.html':<28} {seconds:>8.2f} {page.stat().st_size / 1024:>8.0f}")
            seconds, folder = best_of(3, lambda: country_pages.build(root, con))
            size = sum(p.stat().st_size for p in folder.iterdir())
            print(f"{'report/country/ (' + str(len(list(folder.iterdir()))) + ' pages)':<28} {seconds:>8.2f} "
                  f"{size / 1024:>8.0f}")


if __name__ == "__main__":
    main()
