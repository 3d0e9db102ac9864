"""The `nverify` command: parses arguments, calls the library, renders, returns the exit code."""

from __future__ import annotations

import argparse
import json
import os
import sys
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


def _cosim_count(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = -1
    if n < 0:
        raise argparse.ArgumentTypeError(f"--cosim {text!r}: give a number of entry states, 0 or more")
    return n


def _positive(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        v = -1
    if v <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return v


def _temperature(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= v <= 2.0:
        raise argparse.ArgumentTypeError(f"{text!r}: the temperature is between 0 and 2")
    return v


def _count(text: str) -> int:
    """A count of at least 1 (--jobs, --iterations, --rounds, --samples; argparse names the flag)."""
    v = _int(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: needs at least 1")
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
    pr.add_argument("blob", help="raw machine code, or an ELF, Mach-O or PE/COFF object, library or executable")
    pr.add_argument("--spec", required=True, help="spec file (.smt) or the name of a spec in specs/")
    pr.add_argument("--arch", help="ISA of a raw blob: x86_64 (amd64) or aarch64 (arm64)")
    pr.add_argument("--base", type=_int, help="load address of a raw blob (default 0x400000)")
    pr.add_argument("--abi", type=_abi, help="calling convention: sysv or win64 (x86_64), aapcs64 or apple (aarch64); "
                    "default: win64 for PE/COFF, apple for arm64 Mach-O, else sysv / aapcs64")
    pr.add_argument("--symbol", help="function to verify in an object file (default: the spec's function)")
    pr.add_argument("--ref", metavar="REF", help="prove BLOB equal to the reference blob REF on every "
                    "entry state allowed by pre (post is then optional)")
    pr.add_argument("--jobs", type=_count, help="solver worker processes (default: number of cores)")
    pr.add_argument("--timeout", type=_positive, default=60.0, help="seconds per obligation (default 60)")
    pr.add_argument("--cosim", type=_cosim_count, default=None, metavar="N",
                    help="entry states a PROVEN is co-simulated with on the CPU, spread over its paths, at least "
                    "one each (default 16; 0: off)")
    pr.add_argument("--cache", metavar="DIR", default=os.environ.get("NVERIFY_CACHE"),
                    help="keep proven obligations in DIR, keyed by the query's hash, and reuse them "
                         "(default: $NVERIFY_CACHE, else off; keep DIR private: an entry is trusted)")
    pr.add_argument("--solver", type=_solvers, metavar="NAMES",
                    help="comma-separated solvers to race, in priority order (default: bitwuzla,z3,cvc5, "
                    "those installed)")
    pr.add_argument("--json", metavar="PATH", help="write the result as JSON to PATH ('-' for stdout)")
    pr.add_argument("--sign", metavar="KEY", help="on PROVEN, sign an attestation with this private key "
                    "(needs --emit)")
    pr.add_argument("--emit", metavar="DIR", help="on PROVEN, write NAME.bin, NAME.o and the signed "
                    "NAME.bin.intoto.json into DIR (needs --sign)")
    pr.add_argument("--provenance", metavar="JSON", help="a JSON file describing who generated the blob; "
                    "copied into the attestation")
    pr.add_argument("--report", metavar="PATH", help="write an audit report; .html, .md or .pdf decides the format")
    pr.add_argument("--quiet", "-q", action="store_true", help="no terminal summary")
    rp = sub.add_parser("report", help="render an audit report from a saved result or an attestation",
                        description="Render RESULT (a result saved with --json, or a NAME.bin.intoto.json "
                        "attestation) as an audit report; the extension of --out decides the format.")
    rp.add_argument("result", help="result JSON or attestation")
    rp.add_argument("--out", required=True, metavar="PATH", help="report file: .html, .md or .pdf")
    sub.add_parser("specs", help="list the specs shipped in the library")
    sub.add_parser("generators", help="list the installed generators (built-in and plugins)")
    sy = sub.add_parser("synth", help="generate code for a spec and prove it (CEGIS)",
                        description="Run a generator, verify every candidate with the full pipeline, feed the "
                        "verifier's counterexamples back, and end with the best PROVEN candidate (exit 0) or "
                        "exit 3 with what was tried.")
    sy.add_argument("--spec", required=True, help="spec file (.smt) or the name of a spec in specs/")
    sy.add_argument("--arch", required=True, help="x86_64 (amd64) or aarch64 (arm64)")
    sy.add_argument("--generator", required=True, metavar="NAME", help="see 'nverify generators'")
    sy.add_argument("--from", dest="source", metavar="FILE",
                    help="input for the generator: hand's candidate, or the program to optimise ('-' = stdin)")
    sy.add_argument("--budget", type=_positive, default=60.0, help="seconds for the whole search (default 60)")
    sy.add_argument("--seed", type=_int, default=0, help="random seed (default 0)")
    sy.add_argument("--iterations", type=_count, help="stop after this many proposals: with --seed, the same "
                    "search on any machine (--budget still caps the time)")
    sy.add_argument("--jobs", type=_count, default=1, help="parallel chains / solver processes (default 1)")
    sy.add_argument("--abi", type=_abi, help="calling convention (default: the ISA's)")
    sy.add_argument("--timeout", type=_positive, default=60.0, help="seconds per obligation (default 60)")
    sy.add_argument("--sign", metavar="KEY", help="sign the proven result (needs --emit)")
    sy.add_argument("--emit", metavar="DIR", help="write NAME.bin, NAME.o and the attestation (needs --sign)")
    sy.add_argument("--json", metavar="PATH", help="write the outcome as JSON ('-' for stdout)")
    sy.add_argument("--quiet", "-q", action="store_true", help="no terminal summary")
    llm = sy.add_argument_group("llm generator", "an OpenAI-compatible chat-completions endpoint; the API key is "
                                "read from OPENAI_API_KEY (optional) and never written anywhere")
    llm.add_argument("--endpoint", metavar="URL", help="base URL, e.g. http://localhost:11434/v1 "
                     "(default: $OPENAI_BASE_URL)")
    llm.add_argument("--model", metavar="NAME", help="model name (default: $NVERIFY_LLM_MODEL)")
    llm.add_argument("--rounds", type=_count, default=5, help="rounds of ask-verify-feed back (default 5)")
    llm.add_argument("--temperature", type=_temperature, default=0.7, help="sampling temperature (default 0.7)")
    llm.add_argument("--samples", type=_count, default=1, help="completions per round, verified in parallel "
                     "(default 1)")
    llm.add_argument("--transcript", metavar="PATH", help="write the conversation as JSON Lines (without the key)")
    kg = sub.add_parser("keygen", help="make a signing key pair",
                        description="Write PREFIX.key (PEM, mode 0600) and PREFIX.pub (PEM).")
    kg.add_argument("--out", required=True, metavar="PREFIX", help="path prefix of the two files")
    kg.add_argument("--type", default="ecdsa-p256", choices=["ecdsa-p256", "ed25519"],
                    help="key type (default ecdsa-p256, cosign's default)")
    kg.add_argument("--force", action="store_true", help="replace existing files")
    ck = sub.add_parser("check", help="check a file against its signed attestation",
                        description="Exit 0 only if ATT's signature verifies with PUB, FILE is one of its "
                        "subjects, the attested verdict is proven and (with --spec) SPEC is the spec it "
                        "was proven against; otherwise exit 1 with the reason.")
    ck.add_argument("file", help="the file to check (NAME.bin or NAME.o)")
    ck.add_argument("--attestation", required=True, metavar="ATT", help="the DSSE envelope (NAME.bin.intoto.json)")
    ck.add_argument("--key", required=True, metavar="PUB", help="the signer's public key (PEM)")
    ck.add_argument("--spec", help="require this spec (file or library name)")
    gt = sub.add_parser("gate", help="check every blob of a manifest (CI gate)",
                        description="Every blob in the manifest must carry a valid attestation for its current "
                        "bytes, spec and options (or, with --prove-missing, be proven now). Exit 0 if all pass, "
                        "1 if any fails, 2 for a malformed manifest.")
    gt.add_argument("--manifest", default="nverify.toml", help="the manifest (default nverify.toml)")
    gt.add_argument("--sarif", metavar="PATH", help="write a SARIF 2.1.0 report (GitHub code scanning)")
    gt.add_argument("--junit", metavar="PATH", help="write a JUnit XML report")
    gt.add_argument("--jobs", type=_count, help="blobs checked in parallel (default: number of cores)")
    gt.add_argument("--prove-missing", action="store_true",
                    help="prove blobs whose attestation is missing or stale (results cached by content hash)")
    gt.add_argument("--quiet", "-q", action="store_true", help="print failures only")
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        if args.command == "prove":
            return _prove(args)
        if args.command == "specs":
            return _specs()
        if args.command == "generators":
            return _generators()
        if args.command == "synth":
            return _synth(args)
        if args.command == "keygen":
            return _keygen(args)
        if args.command == "check":
            return _check(args)
        if args.command == "gate":
            return _gate(args)
        if args.command == "report":
            return _report(args)
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
    if args.report:
        _reporting(lambda: __import__("reports").check_target(args.report))
    signing = _signing(args)
    to_stdout = args.json == "-"
    console = Console(stderr=to_stdout)
    opts = Options(arch=args.arch, base=args.base, symbol=args.symbol, jobs=args.jobs, timeout=args.timeout,
                   ref=args.ref, solvers=args.solver, abi=args.abi, cache=args.cache, cosim=args.cosim)
    progress = _Progress(Console(stderr=True)) if sys.stderr.isatty() and not args.quiet else None
    try:
        result = prove(args.blob, args.spec, opts, progress)
    finally:
        if progress:
            progress.stop()
    data = result.to_json()
    if signing is not None and result.exit_code == 0:
        from .emit import emit

        key, provenance = signing
        written = emit(args.emit, result.code, data, result.spec_text, key, provenance, unit=result.unit)
        data["emitted"] = [str(p) for p in written]
    if args.json:
        _write_json(args.json, data)
    if args.report:
        import reports

        _reporting(lambda: reports.write(data, args.report))
    if not args.quiet:
        terminal.render(data, console)
    return result.exit_code


def _reporting(action):
    """Run a report step; a report that cannot be written is an input error, with its reason."""
    import reports

    try:
        return action()
    except reports.ReportError as e:
        raise UsageError(str(e)) from None


def _report(args) -> int:
    import reports

    _reporting(lambda: reports.check_target(args.out))
    result, facts = _reporting(lambda: reports.load_input(args.result))
    _reporting(lambda: reports.write(result, args.out, facts))
    print(f"wrote {args.out} ({result.get('verdict')} {(result.get('spec') or {}).get('function')})")
    return 0


def _signing(args):
    """Validate --sign/--emit/--provenance before the proof, so a bad key costs no proof time."""
    if args.sign is None and args.emit is None:
        if args.provenance is not None:
            raise UsageError("--provenance goes into the attestation: it needs --sign and --emit")
        return None
    if args.sign is None or args.emit is None:
        raise UsageError("--sign KEY and --emit DIR go together: an emitted blob is always signed")
    from .attest import load_private_key

    key = load_private_key(args.sign)
    emit_dir = Path(args.emit)
    if emit_dir.exists() and not emit_dir.is_dir():
        raise UsageError(f"--emit {args.emit}: exists and is not a directory")
    provenance = None
    if args.provenance is not None:
        try:
            provenance = json.loads(Path(args.provenance).read_text())
        except (OSError, ValueError) as e:
            raise UsageError(f"--provenance {args.provenance}: not a readable JSON file ({e})") from None
    return key, provenance


def _gate(args) -> int:
    import time

    from reports import gate as gate_reports

    from . import gate

    t0 = time.monotonic()
    for opt in (args.sarif, args.junit):
        if opt:
            _check_writable(opt)
    manifest = gate.load_manifest(args.manifest)
    outcomes = gate.run(manifest, jobs=args.jobs, prove_missing=args.prove_missing)
    seconds = time.monotonic() - t0
    root = manifest.path.resolve().parent
    if args.sarif:
        _write_json(args.sarif, gate_reports.sarif(outcomes, root, VERSION))
    if args.junit:
        _write_bytes(args.junit, gate_reports.junit(outcomes, seconds))
    failed = [o for o in outcomes if not o.passed]
    for o in outcomes:
        if not o.passed or not args.quiet:
            print(f"{'PASS' if o.passed else 'FAIL'}  {o.entry.name}  [{o.status}] {o.message}")
    print(f"nverify gate: {len(outcomes) - len(failed)}/{len(outcomes)} blobs pass ({seconds:.2f} s)"
          + ("" if not failed else f"; {len(failed)} fail"))
    return 1 if failed else 0


def _generators() -> int:
    from generators import registry

    for name, e in sorted(registry().items()):
        if e.error:
            print(f"{name:<12} {'-':<8} {e.origin:<20} BROKEN: {e.error}")
            continue
        try:
            gen = e.load()
            print(f"{name:<12} {getattr(gen, 'version', '?'):<8} {e.origin:<20} {getattr(gen, 'description', '')}")
        except Exception as exc:  # noqa: BLE001 - one broken plugin must not hide the others
            print(f"{name:<12} {'-':<8} {e.origin:<20} BROKEN: {exc}")
    return 0


def _synth(args) -> int:
    from rich.console import Console

    from generators import Task, create
    from generators.synth import run
    from reports import terminal

    from .arch import canonical_arch
    from .spec import load

    if args.json and args.json != "-":
        _check_writable(args.json)
    arch = canonical_arch(args.arch)
    spec = load(args.spec)
    signing = _signing(argparse.Namespace(sign=args.sign, emit=args.emit, provenance=None))
    gen = create(args.generator)
    if args.transcript:
        if not callable(getattr(gen, "transcript", None)):
            raise UsageError(f"--transcript: the {gen.name} generator keeps no transcript")
        _check_writable(args.transcript, "--transcript")
    options = {"endpoint": args.endpoint, "model": args.model, "rounds": args.rounds,
               "temperature": args.temperature, "samples": args.samples, "abi": args.abi}
    task = Task(spec=spec, arch=arch, seed=args.seed, budget=args.budget, jobs=args.jobs, source=args.source,
                iterations=args.iterations, options=options)
    status = _SynthStatus(Console(stderr=True), gen.name) if sys.stderr.isatty() and not args.quiet else None
    try:
        out = run(gen, task, abi=args.abi, timeout=args.timeout, progress=status)
    finally:
        if status:
            status.stop()
    if args.transcript and out.transcript is not None:
        from .attest import write_files

        write_files({Path(args.transcript): (out.transcript, 0o644)})
    best = out.best.to_json() if out.best is not None else None
    size = len(out.best_candidate.code) if out.best_candidate is not None else 0
    if out.best is not None and best is not None and signing is not None:
        from .emit import emit

        key, _ = signing
        best["emitted"] = [str(p) for p in emit(args.emit, out.best.code, best, out.best.spec_text, key,
                                                out.provenance)]
    data = {"nverify": VERSION, "command": "synth", "verdict": "proven" if best else "unknown",
            "provenance": out.provenance, "result": best, "tried": out.tried}
    if args.json:
        _write_json(args.json, data)
    console = Console(stderr=args.json == "-")
    if not args.quiet:
        if best is not None:
            terminal.render(best, console)
        console.print(f"synth {gen.name}: {out.proposals} proposals, {out.verified} verified in "
                      f"{out.seconds:.1f} s; " + (f"best PROVEN candidate {size} bytes"
                                                  if best else "no candidate was proven"))
        if best is None:
            for t in out.tried[-10:]:
                console.print(f"  {t['verdict']:<8} {t['reason'] or '':<16} {t['size']:>4} bytes  {t['message']}")
    return 0 if best is not None else 3


class _SynthStatus:
    def __init__(self, console, name: str):
        from rich.status import Status

        self.name = name
        self.status = Status(f"synth {name}: starting", console=console)
        self.status.start()

    def __call__(self, s: dict) -> None:
        cost = "—" if s["best_cost"] is None else f"{s['best_cost']:g}"
        self.status.update(f"synth {self.name}: {s['elapsed']:.1f} s, {s['proposals']} proposals "
                           f"({s['rate']:.0f}/s), best cost {cost}, {s['verified']} verified, {s['proven']} proven")

    def stop(self) -> None:
        self.status.stop()


def _keygen(args) -> int:
    from .attest import keygen

    key, pub = keygen(args.out, args.type, args.force)
    print(f"wrote {key} (private, mode 0600) and {pub} (public)")
    return 0


def _check(args) -> int:
    from .attest import CheckFailed, check

    try:
        r = check(args.file, args.attestation, args.key, args.spec)
    except CheckFailed as e:
        print(f"nverify: check failed: {e}", file=sys.stderr)
        return 1
    pred = r.statement["predicate"]
    print(f"OK: {args.file} is {r.subject}, proven {pred.get('function')} against spec "
          f"sha256 {str((pred.get('spec') or {}).get('sha256'))[:16]}… ({pred.get('arch')}, {pred.get('abi')})")
    return 0


def _specs() -> int:
    from .spec import SPEC_DIR

    for f in sorted(SPEC_DIR.glob("*.smt")):
        print(f.stem)
    return 0


def _check_writable(path: str, flag: str = "--json") -> None:
    parent = Path(path).resolve().parent
    if not parent.is_dir():
        raise UsageError(f"{flag} {path}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise UsageError(f"{flag} {path}: directory {parent} is not writable")


def _write_json(path: str, data: dict) -> None:
    text = json.dumps(data, indent=2) + "\n"
    if path == "-":
        sys.stdout.write(text)
        return
    _write_bytes(path, text.encode())


def _write_bytes(path: str, data: bytes) -> None:
    from .attest import write_files

    write_files({Path(path): (data, 0o644)})   # all or nothing: never a half-written file


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
