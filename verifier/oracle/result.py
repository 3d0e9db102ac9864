"""Reads the runner's answer: response bytes -> Run (returned, faulted, timed out, or why not run)."""

from __future__ import annotations

import os
import signal
from typing import Any

from . import wire
from .state import PAGE, Request, Run, decode_status, parse_block

SYSCALL_LEN = {"x86_64": 2, "aarch64": 4}     # syscall / sysenter / int 0x80; svc


def signal_name(signo: int) -> str:
    try:
        return signal.Signals(signo).name
    except ValueError:
        return f"signal {signo}"


def decode(arch: str, how: str, cpu: str, avx: bool, req: Request, raw: bytes) -> Run:
    st = decode_status(raw)

    def mk(**fields: Any) -> Run:
        return Run(how, cpu, **fields)
    if st["magic"] != wire.MAGIC:
        return mk(error="the runner's answer is malformed")
    if st["status"] == wire.ST_SETUP:
        return mk(error=_setup_error(req, st["index"], st["errno"]))
    if not st["complete"]:
        ws = st["wait"] & 0xFFFF_FFFF
        if os.WIFSIGNALED(ws) and os.WTERMSIG(ws) == signal.SIGALRM:
            return mk(timeout=True, error="the blob did not return within the time limit")
        return mk(error=f"the runner's child ended ({_describe(ws)}) without a report")
    pages = _pages(req, raw)
    if st["status"] == wire.ST_RETURNED:
        regs = parse_block(arch, raw[wire.OUT:wire.OUT + wire.REGS_SIZE], avx)
        return mk(returned=True, regs=regs, pages=pages)
    signo, pc = st["signo"], st["pc"]
    if req.jump <= pc < req.jump + PAGE:
        return mk(error=f"the CPU refused the entry state: loading it raised {signal_name(signo)} "
                        "(a control register value it does not accept)")
    code = st["code"] - (1 << 64) if st["code"] >> 63 else st["code"]
    if signo == signal.SIGILL and pc in req.svc_words:        # an svc that became udf under qemu
        return mk(signal=int(signal.SIGSYS), signal_name="SIGSYS", fault_pc=pc, pages=pages,
                   syscall=st["sysnr"])
    if signo == signal.SIGSYS:
        return mk(signal=signo, signal_name="SIGSYS", si_code=code,
                   fault_pc=st["addr"] - SYSCALL_LEN[arch], pages=pages, syscall=st["sysnr"] & 0xFFFF_FFFF)
    return mk(signal=signo, signal_name=signal_name(signo), si_code=code, fault_addr=st["addr"],
               fault_pc=pc, pages=pages)


def _pages(req: Request, raw: bytes) -> dict[int, bytes]:
    where: dict[int, int] = {}
    offset = PAGE
    for m in req.maps:
        for k in range(0, len(m.data), PAGE):
            where[m.addr + k] = offset + k
        offset += len(m.data)
    return {p: raw[where[p]:where[p] + PAGE] for p in req.region_pages}


def _setup_error(req: Request, index: int, errno: int) -> str:
    err = -(errno - (1 << 64)) if errno >> 63 else errno
    reason = os.strerror(err)
    if index < len(req.maps):
        m = req.maps[index]
        taken = (" (the address is taken: by the runner itself, or under qemu-user by qemu; choose other "
                 "addresses)") if err == 17 else ""
        return f"cannot map {m.owner} at {m.addr:#x}..{m.addr + len(m.data):#x}: {reason}{taken}"
    step = {wire.STEP_ALTSTACK: "sigaltstack", wire.STEP_SIGACTION: "rt_sigaction", wire.STEP_TIMER: "setitimer",
            wire.STEP_SECCOMP: "the seccomp filter", wire.STEP_GADGET: "unmapping the svc page"}.get(index, "setup")
    return f"the runner could not confine the blob: {step} failed: {reason}"


def _describe(ws: int) -> str:
    if os.WIFSIGNALED(ws):
        return f"killed by {signal_name(os.WTERMSIG(ws))}"
    if os.WIFEXITED(ws):
        return f"exit code {os.WEXITSTATUS(ws)}"
    return f"wait status {ws:#x}"
