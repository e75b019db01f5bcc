"""`python -m raymia.sweep SWEEP_FILE [--results DIR] [--address ADDR] [--resume]
[--share] [--max-concurrent N] [--dry-run] [--progress-every S] [--report]`: run
a sweep file on Ray and write Parquet tables (--report: and their figures).

Exit status: 0 every trial succeeded, 1 some trial failed (the others are
written), 2 bad input (reported in one line before anything trains), 130
interrupted (Ctrl-C; finished trials are kept, --resume goes on).
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import socket
import sys
from pathlib import Path

from raymia.config import ConfigError, Sweep


def load_sweep(path: str) -> Sweep:
    """Execute a sweep file (trusted code, like any script) and return its `sweep`;
    what it registers (its own attacks, defenses, ...) ships to the workers
    (raymia.extensions.foreign)."""
    file = Path(path)
    if file.is_dir():
        raise ConfigError(path, "is a directory, not a sweep file")
    if not file.is_file():
        raise ConfigError(path, "no such sweep file")
    try:
        source = file.read_text()
        compile(source, str(file), "exec")
    except SyntaxError as e:
        raise ConfigError(f"{path}:{e.lineno}", f"syntax error: {e.msg}") from None
    name = f"raymia_sweep_{file.stem}"
    spec = importlib.util.spec_from_file_location(name, file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its classes pickle by value from here (raymia.execution)
    try:
        spec.loader.exec_module(module)
    except ConfigError:
        raise
    except SystemExit as e:
        raise ConfigError(path, f"called sys.exit({e.code!r}) instead of defining `sweep`"
                          ) from None
    except Exception as e:
        raise ConfigError(path, f"{type(e).__name__}: {e}") from None
    sweep = getattr(module, "sweep", None)
    if not isinstance(sweep, Sweep):
        raise ConfigError(path, f"must define `sweep = raymia.Sweep(...)`, found {type(sweep).__name__}")
    return sweep


PROBE_S = 3.0  # how long to wait for a Ray cluster's address to answer


def check_address(address: str | None) -> None:
    """A ConfigError for an --address / RAY_ADDRESS that is malformed or where
    nothing listens (Ray itself would retry for minutes); `auto` and a client
    address (`ray://host:port`) are passed to Ray as they are."""
    if not address or address == "auto":
        return
    host_port = address.removeprefix("ray://")
    host, sep, port = host_port.rpartition(":")
    if not sep or not host or not port.isdigit() or "/" in host_port:
        raise ConfigError("--address", f"expected HOST:PORT, ray://HOST:PORT or auto, "
                                       f"got {address!r}")
    try:
        with socket.create_connection((host, int(port)), timeout=PROBE_S):
            pass
    except OSError:
        raise ConfigError("--address", f"no Ray cluster at {address}") from None


def check_results(raw: str | None) -> Path | None:
    """The --results directory; a ConfigError for one that is empty, a file, or
    not writable (checked before Ray starts)."""
    if raw is None:
        return None
    if not raw.strip():
        raise ConfigError("--results", "needs a directory name")
    results = Path(raw)
    if results.exists() and not results.is_dir():
        raise ConfigError("--results", f"{results} is a file, not a directory")
    existing = next(p for p in (results, *results.resolve().parents) if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError("--results", f"cannot write under {existing}")
    return results


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m raymia.sweep", description=__doc__.split("\n\n")[0])
    p.add_argument("sweep_file")
    p.add_argument("--results", help="results directory (default: results/<sweep name>)")
    p.add_argument("--address", default=os.environ.get("RAY_ADDRESS"),
                   help="Ray cluster to join (default: $RAY_ADDRESS, else a local Ray)")
    p.add_argument("--resume", action="store_true",
                   help="keep trials already finished in the results directory")
    p.add_argument("--share", action="store_true",
                   help="write into a results directory that holds another sweep's trials")
    p.add_argument("--max-concurrent", type=int, help="trials running at once")
    p.add_argument("--dry-run", action="store_true", help="check the sweep and list its trials")
    p.add_argument("--progress-every", type=float, default=30.0, metavar="SECONDS",
                   help="without a terminal, a progress line this often (default 30)")
    p.add_argument("--report", action="store_true",
                   help="write the report (python -m raymia.report) when the sweep ends")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if not args.address:  # a local Ray binds to 127.0.0.1 and reports nothing
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        if args.max_concurrent is not None and args.max_concurrent < 1:
            raise ConfigError("--max-concurrent", f"must be >= 1, got {args.max_concurrent}")
        if not args.progress_every > 0:
            raise ConfigError("--progress-every", f"must be > 0 seconds, got {args.progress_every}")
        check_address(args.address)
        given = check_results(args.results)
        sweep = load_sweep(args.sweep_file)
        from raymia.execution.runner import Interrupted, run_sweep  # Ray: only to run a sweep

        results = given or Path("results") / sweep.name
        status = run_sweep(sweep, results, address=args.address, resume=args.resume,
                           max_concurrent=args.max_concurrent, dry_run=args.dry_run,
                           out=lambda line: print(line, flush=True), share=args.share,
                           progress_every=args.progress_every)
        if args.report and not args.dry_run:
            from raymia.report import write_report

            print(f"report: {write_report(results)}", flush=True)
        return status
    except ConfigError as e:
        print(f"raymia: error: {e}", file=sys.stderr)
        return 2
    except Interrupted as e:
        print(f"raymia: {e}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("raymia: interrupted before any trial ran", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
