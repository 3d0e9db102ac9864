"""Lays an entry state out in pages for the runner: EntryState -> Request (maps and the wire bytes)."""

from __future__ import annotations

import struct

from . import trampoline, wire
from .state import CANARY, CODE_FILL, PAGE, UDF_SVC, USER_LIMIT, EntryState, Map, Request, StateError, register_block

READ, WRITE, EXEC = 1, 2, 4
SVC_MASK, SVC = 0xFFE0001F, 0xD4000001        # AArch64 svc #imm16


def region_pages(state: EntryState) -> dict[int, bytearray]:
    """The initial bytes of every page the state's regions touch: their data, the canary around it,
    and on x86-64 the return address at [rsp]."""
    pages: dict[int, bytearray] = {}
    for r in state.regions:
        for page in _span(r.addr, len(r.data)):
            pages.setdefault(page, bytearray([CANARY]) * PAGE)
        _write(pages, r.addr, r.data)
    if state.arch == "x86_64":
        rsp = state.regs.get("rsp", 0)
        if not any(r.addr <= rsp and rsp + 8 <= r.addr + len(r.data) for r in state.regions):
            raise StateError(f"the return-address slot [rsp] = {rsp:#x} lies in no region: give the stack "
                             "window, [rsp, rsp+8) included, as a region")
        _write(pages, rsp, state.ret_addr.to_bytes(8, "little"))
    return pages


def request(state: EntryState, base: int, landing: int, avx: bool, qemu: bool, seccomp: bool,
            timeout: float) -> Request:
    arch = state.arch
    regs = dict(state.regs)
    if arch == "aarch64":
        if regs.setdefault("x30", state.ret_addr) != state.ret_addr:
            raise StateError(f"x30 = {regs['x30']:#x} but ret_addr = {state.ret_addr:#x}: on AArch64 they are one")
        if (state.base | state.entry | state.ret_addr) % 4:
            raise StateError("AArch64 code, entry and return address must be 4-byte aligned")
    code, svcs = _code(state, qemu)
    pieces = [("the code", state.base, code, READ | EXEC),
              *((f"region {i}", r.addr, r.data, READ | (WRITE if r.writable else 0))
                for i, r in enumerate(state.regions)),
              ("the landing stub at the return address", state.ret_addr, trampoline.stub(arch, landing), READ | EXEC)]
    _check(pieces, arch)
    data_pages = region_pages(state)
    pages: dict[int, tuple[bytearray, int, str]] = {}
    for owner, addr, data, prot in pieces:
        for page in _span(addr, len(data)):
            old = pages.get(page)
            if old is not None and old[1] != prot:
                raise StateError(f"{owner} and {old[2]} share the page {page:#x} but need different protections")
            if old is None:
                fill = data_pages.get(page) or bytearray([CODE_FILL[arch]]) * PAGE
                pages[page] = (fill, prot, owner)
        if prot & EXEC:
            _write({p: v[0] for p, v in pages.items()}, addr, data)
    jump = base + wire.JPAGE if arch == "x86_64" else _near(state.entry, pages)
    block = register_block(arch, regs, state.entry, avx)
    body = trampoline.page(arch, avx, block, jump, state.entry)
    pages[jump] = (bytearray(body + bytes(PAGE - len(body))), READ | EXEC, "the trampoline page")
    maps = _merge(pages)
    flags = (wire.F_AVX if avx else 0) | (wire.F_SECCOMP if seccomp else 0)
    return Request(_encode(maps, timeout, flags, jump), maps, tuple(sorted(data_pages)), svcs, jump)


def _code(state: EntryState, qemu: bool) -> tuple[bytes, frozenset[int]]:
    """The blob's bytes; under qemu-user every AArch64 svc becomes a udf (qemu would perform the
    system call on the host), and the runner reports that udf as the system call it was."""
    if state.arch != "aarch64" or not qemu:
        return state.code, frozenset()
    code = bytearray(state.code)
    svcs = set()
    for off in range(0, len(code) - 3, 4):
        if int.from_bytes(code[off:off + 4], "little") & SVC_MASK == SVC:
            code[off:off + 4] = UDF_SVC.to_bytes(4, "little")
            svcs.add(state.base + off)
    return bytes(code), frozenset(svcs)


def _check(pieces: list[tuple[str, int, bytes, int]], arch: str) -> None:
    spans = sorted((addr, addr + max(len(data), 1), owner) for owner, addr, data, _ in pieces)
    for lo, hi, owner in spans:
        if not PAGE <= lo < hi <= USER_LIMIT[arch]:
            raise StateError(f"{owner} at {lo:#x}..{hi:#x} is outside user space [{PAGE:#x}, {USER_LIMIT[arch]:#x})")
        if lo < wire.WINDOW[1] and wire.WINDOW[0] < hi:
            raise StateError(f"{owner} at {lo:#x}..{hi:#x} overlaps the window the oracle's runner lives in "
                             f"[{wire.WINDOW[0]:#x}, {wire.WINDOW[1]:#x})")
    for (lo1, hi1, a), (lo2, _hi2, b) in zip(spans, spans[1:], strict=False):
        if lo2 < hi1:
            raise StateError(f"{b} at {lo2:#x} overlaps {a} ({lo1:#x}..{hi1:#x})")


def _near(entry: int, pages: dict) -> int:
    """A free page within an AArch64 `b` of the entry, 1 MiB or more away from it."""
    home = entry & ~(PAGE - 1)
    for step in range(1, 120):
        for page in (home + step * 0x100000, home - step * 0x100000):
            if PAGE <= page < USER_LIMIT["aarch64"] and page not in pages \
                    and not wire.WINDOW[0] <= page < wire.WINDOW[1]:
                return page
    raise StateError(f"no free page within 120 MiB of the entry {entry:#x} for the trampoline")


def _merge(pages: dict[int, tuple[bytearray, int, str]]) -> tuple[Map, ...]:
    maps: list[Map] = []
    run: list[int] = []
    for page in sorted(pages):
        if run and (page != run[-1] + PAGE or pages[page][1] != pages[run[0]][1]):
            maps.append(_map(pages, run))
            run = []
        run.append(page)
    if run:
        maps.append(_map(pages, run))
    return tuple(maps)


def _map(pages: dict[int, tuple[bytearray, int, str]], run: list[int]) -> Map:
    owners = dict.fromkeys(pages[p][2] for p in run)
    return Map(run[0], b"".join(bytes(pages[p][0]) for p in run), pages[run[0]][1], " and ".join(owners))


def _encode(maps: tuple[Map, ...], timeout: float, flags: int, jump: int) -> bytes:
    table_end = wire.TABLE + 32 * len(maps)
    table, offset = b"", table_end
    for m in maps:
        table += struct.pack("<4Q", m.addr, len(m.data), m.prot, offset)
        offset += len(m.data)
    npages = sum(len(m.data) for m in maps)
    if offset > wire.MAXMSG or npages > wire.MAXPAGES:
        raise StateError(f"the state maps {npages} bytes; the oracle takes at most {wire.MAXPAGES}")
    head = wire.header(offset, timeout, len(maps), flags, jump, npages)
    return head + table + b"".join(m.data for m in maps)


def _span(addr: int, size: int) -> range:
    return range(addr & ~(PAGE - 1), addr + max(size, 1), PAGE)


def _write(pages: dict[int, bytearray], addr: int, data: bytes) -> None:
    done = 0
    while done < len(data):
        a = addr + done
        off = a & (PAGE - 1)
        n = min(PAGE - off, len(data) - done)
        pages[a - off][off:off + n] = data[done:done + n]
        done += n
