"""The `nverify` command: parses arguments, calls the library, renders, returns the exit code."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from .errors import EXIT_USAGE, NVerifyError, UsageError
from .verdict import VERSION

DEBUG_ENV = "NVERIFY_DEBUG"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, as for every other input error
        raise UsageError(f"{message} (see 'nverify {self.prog.split()[-1]} --help')"
                         if " " in self.prog else f"{message} (see 'nverify --help')")


def _int(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number (use decimal or 0x… hex)") from None


def _positive(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        v = -1
    if v <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return v


def _jobs(text: str) -> int:
    v = _int(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: --jobs needs at least 1")
    return v


def _solvers(text: str) -> tuple[str, ...]:
    from .solvers import BACKENDS, available

    names = tuple(n.strip().lower() for n in text.split(",") if n.strip())
    if not names:
        raise argparse.ArgumentTypeError("--solver needs at least one name")
    for n in names:
        if n not in BACKENDS:
            raise argparse.ArgumentTypeError(f"{n!r} is not a solver nverify knows (choose from {', '.join(BACKENDS)})")
        if not available([n]):
            raise argparse.ArgumentTypeError(f"solver {n!r} is not installed (pip install {BACKENDS[n].module})")
    if len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"{text!r} names a solver twice")
    return names


def _abi(text: str) -> str:
    from .arch import ABIS

    if text.lower() not in ABIS:
        raise argparse.ArgumentTypeError(f"unknown ABI {text!r}: use one of {', '.join(ABIS)}")
    return text.lower()


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="nverify", description="Prove that machine code meets its spec for every input.")
    p.add_argument("--version", action="version", version=f"nverify {VERSION}")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)
    pr = sub.add_parser("prove", help="prove a blob against a spec",
                        description="Prove BLOB against SPEC. Exit 0 proven, 1 refuted, 2 bad input, 3 unknown.")
    pr.add_argument("blob", help="raw machine code, or an ELF object/library/executable")
    pr.add_argument("--spec", required=True, help="spec file (.smt) or the name of a spec in specs/")
    pr.add_argument("--arch", help="ISA of a raw blob: x86_64 (amd64) or aarch64 (arm64)")
    pr.add_argument("--base", type=_int, help="load address of a raw blob (default 0x400000)")
    pr.add_argument("--abi", type=_abi, help="calling convention: sysv or win64 (x86_64), aapcs64 or apple (aarch64); "
                    "default: win64 for PE/COFF, apple for arm64 Mach-O, else sysv / aapcs64")
    pr.add_argument("--symbol", help="function to verify in an object file (default: the spec's function)")
    pr.add_argument("--ref", metavar="REF", help="prove BLOB equal to the reference blob REF on every "
                    "entry state allowed by pre (post is then optional)")
    pr.add_argument("--jobs", type=_jobs, help="solver worker processes (default: number of cores)")
    pr.add_argument("--timeout", type=_positive, default=60.0, help="seconds per obligation (default 60)")
    pr.add_argument("--solver", type=_solvers, metavar="NAMES",
                    help="comma-separated solvers to race, in priority order (default: bitwuzla,z3,cvc5, "
                    "those installed)")
    pr.add_argument("--json", metavar="PATH", help="write the result as JSON to PATH ('-' for stdout)")
    pr.add_argument("--quiet", "-q", action="store_true", help="no terminal summary")
    sub.add_parser("specs", help="list the specs shipped in the library")
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        if args.command == "prove":
            return _prove(args)
        if args.command == "specs":
            return _specs()
        build_parser().print_help()
        return EXIT_USAGE
    except NVerifyError as e:
        print(f"nverify: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("nverify: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - a bug must not print a traceback at users
        if os.environ.get(DEBUG_ENV):
            raise
        print(f"nverify: internal error: {type(e).__name__}: {e} (set {DEBUG_ENV}=1 for a traceback; "
              "the verdict is unknown)", file=sys.stderr)
        return 3


def _prove(args) -> int:
    from rich.console import Console

    from reports import terminal

    from .pipeline import Options, prove

    if args.json and args.json != "-":
        _check_writable(args.json)
    to_stdout = args.json == "-"
    console = Console(stderr=to_stdout)
    opts = Options(arch=args.arch, base=args.base, symbol=args.symbol, jobs=args.jobs, timeout=args.timeout,
                   ref=args.ref, solvers=args.solver, abi=args.abi)
    progress = _Progress(Console(stderr=True)) if sys.stderr.isatty() and not args.quiet else None
    try:
        result = prove(args.blob, args.spec, opts, progress)
    finally:
        if progress:
            progress.stop()
    data = result.to_json()
    if args.json:
        _write_json(args.json, data)
    if not args.quiet:
        terminal.render(data, console)
    return result.exit_code


def _specs() -> int:
    from .spec import SPEC_DIR

    for f in sorted(SPEC_DIR.glob("*.smt")):
        print(f.stem)
    return 0


def _check_writable(path: str) -> None:
    parent = Path(path).resolve().parent
    if not parent.is_dir():
        raise UsageError(f"--json {path}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise UsageError(f"--json {path}: directory {parent} is not writable")


def _write_json(path: str, data: dict) -> None:
    text = json.dumps(data, indent=2) + "\n"
    if path == "-":
        sys.stdout.write(text)
        return
    target = Path(path)
    fd, tmp = tempfile.mkstemp(dir=target.resolve().parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, target)   # all or nothing: never a half-written result file
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class _Progress:
    """A live status line on stderr: stage, paths explored, obligations solved."""

    def __init__(self, console):
        from rich.status import Status

        self.status = Status("loading", console=console)
        self.status.start()
        self.total = 0
        self.done = 0

    def __call__(self, stage: str, info: dict) -> None:
        if stage == "paths":
            self.status.update(f"exploring: {info['done']} paths done, {info['queued']} queued")
        elif stage == "solve":
            self.total = info["total"]
            self.status.update(f"solving: 0/{self.total} obligations")
        elif stage == "solved":
            self.done += 1
            self.status.update(f"solving: {self.done}/{self.total} obligations ({info['name']} {info['result']})")
        else:
            self.status.update(stage)

    def stop(self) -> None:
        self.status.stop()


if __name__ == "__main__":
    sys.exit(main())
