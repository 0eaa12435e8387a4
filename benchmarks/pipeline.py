"""Speed figures for armswatch on the recorded data in ../shared/data, printed side by side. Asserts nothing.

  .venv/bin/python benchmarks/pipeline.py [--default]   (--default: the default catalog's figures only)

Every run is the real CLI (`armswatch run`) over the recorded mirror, with the temporary Prefect
server it starts itself (PREFECT_API_URL unset; PREFECT_HOME as in the environment), and once more for the default
catalog against a Prefect server that is already running (as deployed), which removes the server's start-up
(about 2 s, mostly importing Prefect's server) from both runs:
- time to first fetch: from starting the CLI until the first response is in the raw archive;
- full run, then unchanged rerun (wall time, peak RSS, exit code) of the default catalog (every flow) and of a
  catalog of every recorded UNTC document (`--only treaties`; ids from ../shared/data/manifest.json); each the
  median of RUNS runs (full runs into fresh warehouses), so one busy moment of a shared machine does not decide;
- marginal cost of one more treaty: (full run of all documents - full run of one document) / (documents - 1),
  beside a bare lxml parse of the same files (per document, best of 3).
Peak RSS is that of each run's largest process (os.wait4: the CLI, its temporary server, its validation
process or a chart renderer), and, beside it, the peak of the whole process tree's memory: the sum of its processes'
proportional set sizes (PSS, pages shared between them counted once), sampled every 50 ms.
Targets (issue 9): unchanged rerun of the default catalog <= 1/3 of its full run; marginal cost <= 20 ms.
(issue 20): peak RSS of the default full run <= 450 MiB; time to first fetch <= 3 s.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

from lxml import etree

from recorded import CLI, ENV, PROJECT, SHARED, children


def tree_pss(pid: int) -> int:
    """The proportional set size (KiB) of `pid` and all its descendants now: each page shared by several of them
    (a library's code) counted once in all."""
    total = 0
    try:
        total += int(Path(f"/proc/{pid}/smaps_rollup").read_text().split("Pss:")[1].split()[0])
        started = children(pid)
    except (OSError, IndexError):  # ended, or a zombie
        return total
    return total + sum(tree_pss(child) for child in started)


def run_cli(*args: str, first_fetch: Path | None = None, env: dict | None = None) -> dict:
    """Wall seconds, peak RSS (MiB) of this run's largest process and of its process tree, exit code; and seconds
    until `first_fetch` appears."""
    start = time.perf_counter()
    proc = subprocess.Popen([str(CLI), "run", "--mirror", str(SHARED), *args], env=env or ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first, tree = None, 0
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)  # this run's own peak, not every child's so far
        if pid:
            break
        tree = max(tree, tree_pss(proc.pid))
        if first is None and first_fetch is not None and any(first_fetch.glob("*/*.json")):
            first = time.perf_counter() - start
        time.sleep(0.05)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {"wall": time.perf_counter() - start, "first": first, "code": proc.returncode,
            "rss": usage.ru_maxrss / 1024, "tree": tree / 1024}


RUNS = 3


def median_of(runs: list[dict]) -> dict:
    """The run of median wall time, with its exit code; "rss" and "first" are the medians of theirs."""
    median = dict(sorted(runs, key=lambda r: r["wall"])[len(runs) // 2])
    for figure in ("rss", "tree", "first"):
        values = sorted(r[figure] for r in runs if r[figure] is not None)
        median[figure] = values[len(values) // 2] if values else None
    return median


def full_and_rerun(root: Path, *args: str, env: dict | None = None, first_fetch: bool = False) -> tuple[dict, dict]:
    """Median full run (each into a fresh warehouse under root) and median unchanged rerun (of the first)."""
    fulls = [run_cli(*args, "--warehouse", str(root / f"w{i}"), env=env,
                     first_fetch=root / f"w{i}" / "_raw" / "responses" if first_fetch else None)
             for i in range(RUNS)]
    again = [run_cli(*args, "--warehouse", str(root / "w0"), env=env) for _ in range(RUNS)]
    return median_of(fulls), median_of(again)


def untc_catalog(path: Path, limit: int | None = None) -> int:
    """A catalog of every recorded UNTC document, each with its recorded URL; returns how many entries."""
    from tasks import catalog

    entries = [e for e in json.loads((SHARED / "manifest.json").read_text()) if "treaties.un.org" in e["url"]]
    lines = []
    for e in entries[:limit]:
        line = f"- {{id: {Path(e['file']).name.removesuffix('.en.xml')}, short_name: x, url: '{e['url']}'}}\n"
        path.write_text(line)
        try:
            catalog.load(path)
        except catalog.CatalogError:  # ids the current catalog does not accept yet
            continue
        lines.append(line)
    path.write_text("".join(lines))
    return len(lines)


def best_of(n: int, fn) -> float:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    import sys

    sys.path.insert(0, str(PROJECT))
    files = [SHARED / e["file"] for e in json.loads((SHARED / "manifest.json").read_text())
             if "treaties.un.org" in e["url"]]
    bodies = [f.read_bytes() for f in files]
    parser = etree.XMLParser(resolve_entities=False, no_network=True, recover=True)  # some documents hold C0 chars
    lxml_all = best_of(3, lambda: [etree.fromstring(b, parser) for b in bodies])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        full, again = full_and_rerun(tmp / "default", first_fetch=True)
        rows.append(("default catalog, every flow", full, again))
        if "--default" in sys.argv:  # the default catalog's figures only (issue 20's targets), a few minutes
            print(f"time to first fetch: {full['first']:.1f} s; full run {full['wall']:.1f} s (exit {full['code']}), "
                  f"unchanged rerun {again['wall']:.1f} s, rerun/full {again['wall'] / full['wall']:.2f}; peak RSS: "
                  f"full run {full['rss']:.0f} MiB, unchanged rerun {again['rss']:.0f} MiB (largest process); "
                  f"full run {full['tree']:.0f} MiB, unchanged rerun {again['tree']:.0f} MiB (process tree, PSS); "
                  f"medians of {RUNS}")
            return

        every, one = tmp / "all.yaml", tmp / "one.yaml"
        n = untc_catalog(every)
        untc_catalog(one, limit=1)
        full_all, again_all = full_and_rerun(tmp / "all", "--only", "treaties", "--treaties", str(every))
        rows.append((f"all {n} recorded UNTC documents", full_all, again_all))
        full_one = median_of([run_cli("--only", "treaties", "--treaties", str(one), "--warehouse",
                                      str(tmp / "one" / f"w{i}")) for i in range(RUNS)])

        from flows.server import PrefectAPI

        with PrefectAPI() as url:  # as deployed: a Prefect server that is already running
            full_s, again_s = full_and_rerun(tmp / "served", env={**ENV, "PREFECT_API_URL": url})
        rows.insert(1, ("default catalog, running server", full_s, again_s))

    marginal = (full_all["wall"] - full_one["wall"]) / max(n - 1, 1)

    print(f"time to first fetch (CLI start to first archived response): {full['first']:.1f} s")
    print()
    print(f"{'catalog':<34} {'full run':>9} {'exit':>4} {'unchanged rerun':>16} {'exit':>4} {'rerun/full':>10}")
    for label, a, b in rows:
        print(f"{label:<34} {a['wall']:>7.1f} s {a['code']:>4} {b['wall']:>14.1f} s {b['code']:>4} "
              f"{b['wall'] / a['wall']:>10.2f}")
    print()
    print(f"{'per treaty':<34} {'armswatch':>9} {'bare lxml parse':>16}")
    print(f"{'marginal cost of one more':<34} {marginal * 1000:>6.1f} ms {lxml_all / len(bodies) * 1000:>13.2f} ms"
          f"   (({full_all['wall']:.1f} s - {full_one['wall']:.1f} s) / {n - 1}; lxml over {len(bodies)} files)")
    print()
    for what, figure in (("the run's largest process", "rss"), ("the run's process tree, PSS", "tree")):
        print(f"peak RSS (median of {RUNS}, {what}): default catalog full run {full[figure]:.0f} MiB, "
              f"unchanged rerun {again[figure]:.0f} MiB; all documents {full_all[figure]:.0f} MiB")


if __name__ == "__main__":
    main()
