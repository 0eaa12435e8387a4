"""The `armswatch` command: run the flows once, show the warehouse's status, record a mirror, describe the tables.

  armswatch run [--mirror DIR] [--warehouse DIR|URL] [--treaties FILE] [--sources DIR]
                [--only treaties|indicators|<source>] [--force] [--verbose]
  armswatch status [--warehouse DIR|URL] [--json | --wide]
  armswatch record DIR [--treaties FILE] [--sources DIR]
  armswatch automations apply [--alert-block SLUG]
  armswatch docs

Exit codes:
  0  every batch was published or unchanged (status: nothing quarantined)
  1  some batch was quarantined or failed; the others were still published (status: a quarantine is open)
  2  usage or configuration error: bad argument, invalid catalog file, unreadable mirror, unsupported warehouse URL
     (a scheme no installed fsspec backend opens, or credentials inside the URL); status: a damaged warehouse
  3  infrastructure failure: Prefect API unreachable, warehouse not writable or a file, warehouse locked by
     another run, no upstream host reachable at all (no network; `record` then writes nothing)
  4  the run crashed or was stopped (unexpected exception, Ctrl-C, SIGINT, SIGTERM), after still printing the
     summary of what was published and sending the alert; a second Ctrl-C ends it at once
"""

from __future__ import annotations

import argparse
import atexit
import gc
import importlib
import json
import os
import signal
import sys

# flows.server imports nothing of Prefect; flows/__init__.py turns analytics off first
from flows.server import PrefectAPI, PrefectUnavailable, loading

EXIT_OK, EXIT_QUARANTINED, EXIT_USAGE, EXIT_INFRASTRUCTURE, EXIT_CRASH = 0, 1, 2, 3, 4


class Terminated(Exception):
    """SIGTERM or SIGINT (Ctrl-C) outside a flow, raised where the CLI is. While a flow runs, Prefect's handler
    raises TerminationSignal instead, and the flow still reports, alerts and releases the lock."""


# What the first flow and task runs would import only once the temporary server answers: imported while it starts.
LOADED_LATER = ("prefect.flow_engine", "prefect.task_engine", "fastapi.encoders", "tasks.http")


WAREHOUSE_HELP = "warehouse root: a folder or URL, e.g. s3://bucket/prefix (default ./warehouse)"
TREATIES_HELP = "treaty catalog (default: the project's treaties.yaml)"
SOURCES_HELP = "folder of <source>.yaml configurations (default: the project's sources/)"


def parser() -> argparse.ArgumentParser:
    from tasks import registry

    p = argparse.ArgumentParser(prog="armswatch", description=__doc__.split("\n\n")[0],
                                epilog=__doc__[__doc__.index("Exit codes"):],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the flows once")
    run.add_argument("--mirror", help="serve every request from DIR/manifest.json (or env ARMSWATCH_MIRROR)")
    run.add_argument("--warehouse", default="warehouse", help=WAREHOUSE_HELP)
    run.add_argument("--treaties", help=TREATIES_HELP)
    run.add_argument("--sources", help=SOURCES_HELP)
    run.add_argument("--only", choices=["treaties", "indicators", *registry.names()],
                     help="run one flow or one source only (default: all)")
    run.add_argument("--force", action="store_true", help="parse, validate and republish even unchanged batches")
    run.add_argument("--verbose", action="store_true", help="show Prefect's and GX's log lines on the console")
    st = sub.add_parser("status", help="tables, batches, open quarantines and last runs of a warehouse")
    st.add_argument("--warehouse", default="warehouse", help=WAREHOUSE_HELP)
    st.add_argument("--json", action="store_true", help="print JSON instead of text")
    st.add_argument("--wide", action="store_true", help="full sha256s, timestamps and batch names (wider than "
                                                        "100 columns)")
    rec = sub.add_parser("record", help="fetch every catalog URL live and write a mirror to DIR")
    rec.add_argument("dir")
    rec.add_argument("--treaties", help=TREATIES_HELP)
    rec.add_argument("--sources", help=SOURCES_HELP)
    rec.add_argument("--mirror", help="record from another mirror instead of the live URLs (for testing)")
    auto = sub.add_parser("automations", help="Prefect automations (automations/*.yaml) on the server of "
                                              "PREFECT_API_URL")
    auto.add_argument("action", choices=["apply"], help="create or replace them, notifying the alert channel")
    auto.add_argument("--alert-block", help="notification block slug (default: ARMSWATCH_ALERT_URL or "
                                            "ARMSWATCH_ALERT_BLOCK)")
    sub.add_parser("docs", help="print the data dictionary (Markdown) of every table")
    return p


def console() -> None:
    """The `armswatch` command: main(), the process's atexit handlers (Prefect's log and event drains, logging's
    flush), then the exit, without the interpreter tearing down its objects one by one: that took about 0.5 s once
    Prefect, pandas and pyarrow are loaded, a tenth of an unchanged run (benchmarks/pipeline.py)."""
    code = main()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except OSError:  # the reader went away (`armswatch docs | head`)
            pass
    os._exit(code)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    api = PrefectAPI()
    if argv[:1] == ["run"]:
        api.launch()  # first of all: the temporary server boots (about 2 s) while the CLI imports and checks
    try:
        return _command(argv, api)
    except KeyboardInterrupt:  # Ctrl-C before the CLI's own handler was installed
        return _fail("terminated by SIGINT before the run started: nothing was published", EXIT_CRASH)
    finally:
        api.stop()
        gc.unfreeze()  # what loading() froze for this run; an interpreter that goes on (tests) can free it again


def _command(argv: list[str], api: PrefectAPI) -> int:
    from tasks import catalog
    from tasks.errors import FetchError
    from tasks.publish import WarehouseBusy, WarehouseUnusable
    from tasks.run import SIGNALS, outside_imports
    from tasks.storage import StorageError

    try:
        args = parser().parse_args(argv)
    except SystemExit as exc:
        return EXIT_USAGE if exc.code else EXIT_OK
    previous = {signum: signal.getsignal(signum) for signum in SIGNALS.TERMINATION}
    if args.command in ("run", "record"):
        signal.signal(signal.SIGTERM, outside_imports(_terminate))
        signal.signal(signal.SIGINT, outside_imports(_interrupt))
        SIGNALS.listen()
    try:
        if args.command == "run":
            return _run(args, api)
        if args.command == "status":
            return _status(args)
        if args.command == "record":
            return _record(args, api)
        if args.command == "automations":
            return _automations(args, api)
        from tasks.dictionary import markdown

        print(markdown())
        return EXIT_OK
    except (catalog.CatalogError, StorageError) as exc:
        return _fail(exc, EXIT_USAGE)
    except FetchError as exc:
        return _fail(exc, EXIT_USAGE if exc.source == "mirror" else EXIT_QUARANTINED)
    except (WarehouseBusy, WarehouseUnusable, PrefectUnavailable) as exc:
        return _fail(exc, EXIT_INFRASTRUCTURE)
    except Terminated as exc:
        return _fail(f"{exc} before any flow ran: nothing was published", EXIT_CRASH)
    except BrokenPipeError:  # the reader went away (`armswatch status | head`): stop quietly, as a shell tool does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE
    except Exception as exc:
        return _fail(f"the run crashed: {type(exc).__name__}: {exc}", EXIT_CRASH)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _terminate(signum, frame):
    from tasks.run import terminated_by

    raise Terminated(terminated_by(signum))


def _interrupt(signum, frame):
    """Ctrl-C ends a run as SIGTERM does: handed to the SIGTERM handler in place (Prefect's while a flow runs, so
    the flow stops, reports and alerts; the CLI's otherwise). A second one ends the process (Signals.again)."""
    return getattr(signal.getsignal(signal.SIGTERM), "__wrapped__", _terminate)(signum, frame)


def _fail(problem, code: int) -> int:
    print(f"armswatch: {problem}", file=sys.stderr)
    return code


def _configured(args) -> None:
    """Configuration errors (environment settings, configuration files) exit 2 before any flow starts."""
    from tasks import catalog, registry
    from tasks.environment import environment

    environment()
    catalog.load(args.treaties)
    if getattr(args, "only", None) in (None, "treaties"):  # the treaty source's origin and hosts, when treaties run
        registry.treaty_source(args.sources)
    registry.load(args.sources)


def _run(args, api: PrefectAPI) -> int:
    from tasks import registry
    from tasks.run import check_warehouse

    _configured(args)
    check_warehouse(args.warehouse)  # so does an unsupported URL; a file or read-only folder exits 3

    with loading():  # while the temporary server starts
        for module in LOADED_LATER:
            importlib.import_module(module)
        from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

        from flows.console import closing_lines, progress, published_keys, quiet_logging
        from flows.indicators import indicators
        from flows.ratification import ratification
        from flows.refresh import refresh
        from flows.steps import reports_of
        from tasks.alerts import summary_lines
        from tasks.run import Report

    if not args.verbose:
        quiet_logging()
    params = {"warehouse": args.warehouse, "mirror": args.mirror, "force": args.force, "return_state": True}
    # Heartbeats detect crashed flow runs for a long-lived server; a temporary server ends with this process, and
    # each heartbeat thread costs up to a second when its flow ends.
    heartbeats = {} if api.configured else {PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}
    with api, temporary_settings(updates=heartbeats), progress(not args.verbose):
        if args.only == "treaties":
            state = ratification(treaties=args.treaties, sources=args.sources, **params)
        elif args.only == "indicators":
            state = indicators(sources=args.sources, **params)
        elif args.only in registry.names():
            state = indicators(sources=args.sources, only=args.only, **params)
        else:
            state = refresh(treaties=args.treaties, sources=args.sources, **params)
    reports: list[Report] = reports_of(state)  # raises what ended a flow before it had a report (lock held, ...)
    code = _exit_code(reports)
    print("\n".join(summary_lines(reports, published_keys(args.warehouse)) + closing_lines(args.warehouse, code)))
    if code == EXIT_INFRASTRUCTURE:
        return _unreachable(reports, "nothing new was fetched, the published tables are as they were")
    return code


def _exit_code(reports) -> int:
    """A run's exit code from its flows' reports: 4 if it crashed or was stopped, 3 if it reached no upstream host
    at all (tasks/run.py offline), 1 if a batch was quarantined or failed, else 0."""
    from tasks.run import offline

    return (EXIT_CRASH if any(r.crash for r in reports) else EXIT_INFRASTRUCTURE if offline(reports)
            else EXIT_OK if all(r.ok for r in reports) else EXIT_QUARANTINED)


def _unreachable(reports, consequence: str) -> int:
    """Exit 3 for a run that reached no upstream host at all, naming the hosts it tried and what that means."""
    from tasks.run import offline

    return _fail(f"no upstream host could be reached ({', '.join(offline(reports))}): {consequence}",
                 EXIT_INFRASTRUCTURE)


def _status(args) -> int:
    from tasks import storage
    from tasks.status import WarehouseDamaged, status, text

    root = storage.location(args.warehouse)  # read only: a warehouse this user cannot write has a status too
    if not root.is_dir():
        return _fail(f"warehouse {root} " + ("is a file, not a folder" if root.exists() else
                                             "does not exist (nothing was ever run into it)"), EXIT_USAGE)
    try:
        report = status(root)
    except WarehouseDamaged as exc:
        return _fail(f"warehouse {root} is damaged: {exc}", EXIT_USAGE)
    print(json.dumps(report, indent=1) if args.json else text(report, wide=args.wide))
    return EXIT_QUARANTINED if report["open_quarantines"] else EXIT_OK


def _automations(args, api: PrefectAPI) -> int:
    """Apply the automation files to the lasting server the deployments run on (not a temporary one)."""
    from flows.automations import AutomationsError, apply

    if not api.configured:
        return _fail("automations need the Prefect server the deployments run on: set PREFECT_API_URL", EXIT_USAGE)
    try:
        with api:
            names = apply(args.alert_block)
    except AutomationsError as exc:
        return _fail(exc, EXIT_USAGE)
    print(f"applied {len(names)} automation(s): {', '.join(names)}")
    return EXIT_OK


def _record(args, api: PrefectAPI) -> int:
    """A full run into a scratch warehouse, then its raw archive exported as a mirror: the same fetch code. A run
    that reached no upstream host at all records nothing (exit 3, as `run`)."""
    import tempfile
    from pathlib import Path

    from flows.console import quiet_logging
    from flows.refresh import refresh
    from flows.steps import reports_of
    from tasks.archive import RawArchive
    from tasks.mirror import export

    _configured(args)
    quiet_logging()
    with tempfile.TemporaryDirectory(prefix="armswatch-record-") as scratch, api:
        state = refresh(warehouse=scratch, mirror=args.mirror, treaties=args.treaties, sources=args.sources,
                        return_state=True)
        if _exit_code(reports := reports_of(state)) == EXIT_INFRASTRUCTURE:
            return _unreachable(reports, f"nothing was recorded into {args.dir}")
        entries = export(RawArchive(Path(scratch) / "_raw"), Path(args.dir), "recorded by armswatch record")
    print(f"recorded {len(entries)} URLs into {args.dir}/manifest.json")
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
