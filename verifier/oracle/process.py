"""Keeps one runner process per architecture alive and talks to it: request bytes -> response bytes.

The runner ELF is built at a random base in wire.WINDOW each time a runner starts, handed to the
kernel (or to qemu-user) through a memfd, and started with core dumps and file growth disabled and
no environment. A runner ends when its stdin closes, so it never outlives the Python process; a
process forked from this one starts runners of its own instead of sharing the parent's pipes.
"""

from __future__ import annotations

import atexit
import os
import resource
import secrets
import select
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable

from . import host, runner, wire
from .state import Request

MFD_EXEC = 0x10                    # Linux 6.3+: executable even where vm.memfd_noexec says otherwise


def _memfd(elf: bytes) -> int:
    try:
        fd = os.memfd_create("nverify-oracle-runner", MFD_EXEC)
    except OSError:                # an older kernel: no such flag, and no such restriction
        fd = os.memfd_create("nverify-oracle-runner", 0)
    os.write(fd, elf)
    return fd


def _confine() -> None:            # runs in the child between fork and exec
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))


class Runner:
    """One runner process serving requests for one architecture."""

    def __init__(self, arch: str, how: str) -> None:
        self.arch, self.how, self.owner = arch, how, os.getpid()
        self.failure = ""            # why the last call lost the runner: 'timeout' or 'exited'
        self.base = wire.WINDOW[0] + secrets.randbelow((wire.WINDOW[1] - wire.WINDOW[0]) // wire.SLOT) * wire.SLOT
        self.landing = int.from_bytes(runner.code(arch, self.base)[-8:], "little")
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        elf = runner.build(arch, self.base)
        fd = _memfd(elf)
        try:
            self.proc = self._start(f"/proc/self/fd/{fd}", (fd,))
        except OSError:              # memfds not executable here: a private file instead
            self._tmp = tempfile.TemporaryDirectory(prefix="nverify-oracle-")
            path = os.path.join(self._tmp.name, f"runner-{arch}")
            with open(path, "wb") as f:
                f.write(elf)
            os.chmod(path, 0o700)
            self.proc = self._start(path, ())
        finally:
            os.close(fd)

    def _start(self, path: str, fds: tuple[int, ...]) -> subprocess.Popen[bytes]:
        argv = [path] if self.how == "native" else [host.QEMU[self.arch], "-cpu", host.QEMU_CPU, path]
        return subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                pass_fds=fds, env={}, cwd="/", preexec_fn=_confine)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def call(self, data: bytes, expects: list[int], seconds: float) -> list[bytes | None]:
        """Send requests (concatenated in `data`) and read one response of each expected size; None
        for every response not read (the runner died or was too slow: then it is killed). A thread
        writes while this one reads, so neither side waits for the other's pipe to drain."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        deadline = time.monotonic() + seconds
        writer = threading.Thread(target=self._write, args=(data,), daemon=True)
        writer.start()
        answers: list[bytes | None] = []
        fd = self.proc.stdout.fileno()
        for expect in expects:
            answer = self._read(fd, expect, deadline)
            if answer is None:
                self.failure = "timeout" if time.monotonic() >= deadline else "exited"
                self.close()
                break
            answers.append(answer)
        writer.join()
        return answers + [None] * (len(expects) - len(answers))

    def _write(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            pass                                # the reader sees the runner go and reports it

    @staticmethod
    def _read(fd: int, expect: int, deadline: float) -> bytes | None:
        out = bytearray()
        while len(out) < expect:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            chunk = os.read(fd, expect - len(out))
            if not chunk:
                return None
            out += chunk
        return bytes(out)

    def close(self) -> None:
        if self.alive():
            self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()
        if self._tmp is not None:
            self._tmp.cleanup()


_runners: dict[str, Runner] = {}
_lock = threading.Lock()


def started(arch: str, how: str) -> Runner:
    """The runner for `arch`, started if there is none (or it died, or belongs to a parent process)."""
    with _lock:
        return _runner(arch, how)


def _runner(arch: str, how: str) -> Runner:
    r = _runners.get(arch)
    if r is None or not r.alive() or r.owner != os.getpid():
        r = _runners[arch] = Runner(arch, how)
    return r


def call(arch: str, how: str, build: Callable[[Runner], list[Request]], seconds: float
         ) -> tuple[Runner, list[Request], list[bytes | None]]:
    """Run requests on the (possibly new) runner for `arch`: `build(runner)` makes them (they need
    the runner's base and landing address). Serialised: a runner serves one caller at a time."""
    with _lock:
        r = _runner(arch, how)
        reqs = build(r)
        expects = [wire.PAGE + sum(len(m.data) for m in req.maps) for req in reqs]
        return r, reqs, r.call(b"".join(req.data for req in reqs), expects, seconds)


@atexit.register
def shutdown() -> None:
    with _lock:
        for r in _runners.values():
            if r.owner == os.getpid():
                r.close()
        _runners.clear()
