"""The `armswatch` command: run the flows once, record a mirror, or describe the tables.

  armswatch run [--mirror DIR] [--warehouse DIR] [--treaties FILE] [--sources FILE]
                [--only treaties|indicators] [--force]
  armswatch record DIR [--treaties FILE]
  armswatch docs

Exit codes: 0 every batch validated and was published (or was unchanged); 1 a batch was quarantined or a source
failed (the others were still published); 2 usage or configuration error (bad catalog, unreadable mirror,
unsupported warehouse URL, warehouse in use by another run).
"""

from __future__ import annotations

import argparse
import sys

import flows  # noqa: F401  (analytics off before Prefect loads)
from tasks import catalog
from tasks.errors import FetchError
from tasks.publish import WarehouseBusy
from tasks.storage import StorageError, location

EXIT_OK, EXIT_QUARANTINED, EXIT_USAGE = 0, 1, 2


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="armswatch", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the flows once")
    run.add_argument("--mirror", help="serve every request from DIR/manifest.json (or env ARMSWATCH_MIRROR)")
    run.add_argument("--warehouse", default="warehouse",
                     help="warehouse root: a folder or URL, e.g. s3://bucket/prefix (default ./warehouse)")
    run.add_argument("--treaties", help="treaty catalog (default: the project's treaties.yaml)")
    run.add_argument("--sources", help="indicator sources (default: the project's indicators.yaml)")
    run.add_argument("--only", choices=["treaties", "indicators"], help="run one flow only (default: all)")
    run.add_argument("--force", action="store_true", help="republish even batches whose content is unchanged")
    rec = sub.add_parser("record", help="fetch every catalog URL live and write a mirror to DIR")
    rec.add_argument("dir")
    rec.add_argument("--treaties", help="treaty catalog (default: the project's treaties.yaml)")
    rec.add_argument("--sources", help="indicator sources (default: the project's indicators.yaml)")
    rec.add_argument("--mirror", help="record from another mirror instead of the live URLs (for testing)")
    sub.add_parser("docs", help="print the data dictionary (Markdown) of every table")
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        args = parser().parse_args(argv)
    except SystemExit as exc:
        return EXIT_USAGE if exc.code else EXIT_OK
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "record":
            return _record(args)
        from tasks.dictionary import markdown

        print(markdown())
        return EXIT_OK
    except (catalog.CatalogError, StorageError, WarehouseBusy) as exc:
        print(f"armswatch: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except FetchError as exc:
        print(f"armswatch: {exc}", file=sys.stderr)
        return EXIT_USAGE if exc.source == "mirror" else EXIT_QUARANTINED


def _run(args) -> int:
    from flows.indicators import indicators
    from flows.ratification import ratification
    from flows.refresh import refresh

    catalog.load(args.treaties)  # configuration errors exit 2 before any flow starts
    location(args.warehouse)
    catalog.load_indicators(args.sources)
    params = {"warehouse": args.warehouse, "mirror": args.mirror, "force": args.force}
    if args.only == "treaties":
        reports = [ratification(treaties=args.treaties, **params)]
    elif args.only == "indicators":
        reports = [indicators(sources=args.sources, **params)]
    else:
        reports = refresh(treaties=args.treaties, sources=args.sources, **params)
    for report in reports:
        print("\n".join(report.lines()))
    return EXIT_OK if all(r.ok for r in reports) else EXIT_QUARANTINED


def _record(args) -> int:
    """A full run into a scratch warehouse, then its raw archive exported as a mirror: the same fetch code."""
    import tempfile
    from pathlib import Path

    from flows.refresh import refresh
    from tasks.archive import RawArchive
    from tasks.mirror import export

    with tempfile.TemporaryDirectory(prefix="armswatch-record-") as scratch:
        refresh(warehouse=scratch, mirror=args.mirror, treaties=args.treaties, sources=args.sources)
        entries = export(RawArchive(Path(scratch) / "_raw"), Path(args.dir), "recorded by armswatch record")
    print(f"recorded {len(entries)} URLs into {args.dir}/manifest.json")
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
