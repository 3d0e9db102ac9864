"""The CPU oracle (verifier/oracle): registers, memory, faults, confinement and errors, on the real
CPU (x86-64) and under qemu-aarch64, with every blob assembled from the source below."""

from __future__ import annotations

import os
import random
import re
import signal
import struct
from pathlib import Path

import pytest

from verifier import oracle
from verifier.oracle import host, process, runner, wire

from .build import assemble

CODE = 0x400000
RET = 0x500000
STACK = 0x7FF0_0000_0000         # the entry stack pointer: the window below it is a region
ARRAY = 0x600000
SEGV_ACCERR, BUS_ADRALN, FPE_INTDIV, ILL_ILLOPN, SI_KERNEL = 2, 1, 1, 2, 0x80


@pytest.fixture(params=["x86_64", "aarch64"])
def arch(request) -> str:
    return _need(request.param)


@pytest.fixture
def a64() -> str:
    return _need("aarch64")


def _need(arch: str) -> str:
    if oracle.available(arch) is None:
        if os.environ.get("CI"):
            pytest.fail(f"no oracle for {arch}: CI must install qemu-user")
        pytest.skip(f"no oracle for {arch} here (qemu-aarch64 not installed)")
    return arch


def state(arch: str, src: str, regs: dict[str, int] | None = None, regions: tuple[oracle.Region, ...] = (),
          ret: int = RET) -> oracle.EntryState:
    sp = "rsp" if arch == "x86_64" else "sp"
    regs = {sp: STACK, **(regs or {})}
    window = oracle.Region(STACK - 0x1000, bytes(0x1100))
    return oracle.EntryState(arch, assemble(arch, src, CODE), CODE, CODE, (window, *regions), regs, ret)


def go(arch: str, src: str, regs: dict[str, int] | None = None, regions: tuple[oracle.Region, ...] = (),
       timeout: float = 5.0) -> oracle.Run:
    return oracle.run(state(arch, src, regs, regions), timeout=timeout)


# --- registers --------------------------------------------------------------------------------------

def test_x86_every_register_round_trips():
    rnd = random.Random(17)
    avx = host.has_avx()
    regs = {r: rnd.getrandbits(64) for r in wire.X86_GPRS if r != "rsp"}
    regs |= {"rsp": STACK, "rflags": rnd.getrandbits(12) & 0xCD5, "mxcsr": rnd.getrandbits(16),
             # fpcw bits 7 and 13-15 are reserved (read 0), bit 6 reads 1; fpsw bits 7 and 15 are computed
             "fpcw": rnd.getrandbits(16) & 0x1F3F | 0x40, "fpsw": rnd.getrandbits(16) & 0x7F7F}
    vec = "ymm" if avx else "xmm"
    regs |= {f"{vec}{i}": rnd.getrandbits(256 if avx else 128) for i in range(16)}
    run = go("x86_64", "ret", regs)
    assert run.returned and run.oracle == "native" and not run.error
    pending = regs["fpsw"] & ~regs["fpcw"] & 0x3F           # an unmasked exception sets ES and B
    expect = regs | {"rsp": STACK + 8, "rflags": regs["rflags"] | 0x202,
                     "fpsw": regs["fpsw"] | (0x8080 if pending else 0)}
    assert {k: run.regs[k] for k in expect} == expect


def test_a64_every_register_round_trips(a64):
    rnd = random.Random(18)
    regs = {f"x{i}": rnd.getrandbits(64) for i in range(30)}
    regs |= {"sp": STACK - 16 * rnd.randrange(64), "nzcv": rnd.getrandbits(4) << 28,
             # FPCR: AHP DN FZ RMode FZ16 (trap enables are RAZ on most cores); FPSR: QC and the flags
             "fpcr": rnd.getrandbits(32) & 0x07C8_0000, "fpsr": rnd.getrandbits(32) & 0x0800_009F}
    regs |= {f"q{i}": rnd.getrandbits(128) for i in range(32)}
    run = go(a64, "ret", regs)
    assert run.returned and not run.error
    assert {k: run.regs[k] for k in regs} == regs
    assert run.regs["x30"] == RET


def test_flags_and_vectors_reach_the_blob():
    """adc and a vector add read their inputs from the loaded state."""
    run = go("x86_64", "mov rax, rdi\nadc rax, rsi\npaddq xmm0, xmm1\nret",
             {"rdi": 5, "rsi": 7, "rflags": 0x1, "xmm0": (3 << 64) | 2, "xmm1": (10 << 64) | 20})
    assert run.regs["rax"] == 13
    vec = next(k for k in ("ymm0", "xmm0") if k in run.regs)
    assert run.regs[vec] & ((1 << 128) - 1) == (13 << 64) | 22


def test_a64_flags_reach_the_blob(a64):
    run = go(a64, "adc x0, x0, x1\nret", {"x0": 5, "x1": 7, "nzcv": 0x2000_0000})     # C set
    assert run.regs["x0"] == 13


# --- memory -----------------------------------------------------------------------------------------

SCALE = {"x86_64": """
    xor ecx, ecx
loop:
    mov eax, dword ptr [rdi + rcx*4]
    lea eax, [rax + rax*2 + 1]
    mov dword ptr [rdi + rcx*4], eax
    inc rcx
    cmp rcx, rsi
    jb loop
    ret""", "aarch64": """
    mov x2, #0
loop:
    ldr w3, [x0, x2, lsl #2]
    add w3, w3, w3, lsl #1
    add w3, w3, #1
    str w3, [x0, x2, lsl #2]
    add x2, x2, #1
    cmp x2, x1
    b.lo loop
    ret"""}


def _args(arch: str, *values: int) -> dict[str, int]:
    names = ("rdi", "rsi", "rdx", "rcx") if arch == "x86_64" else ("x0", "x1", "x2", "x3")
    return dict(zip(names, values, strict=False))


def test_a_computation_matches_python(arch):
    rnd = random.Random(5)
    values = [rnd.getrandbits(32) for _ in range(6)]
    data = struct.pack("<6I", *values)
    run = go(arch, SCALE[arch], _args(arch, ARRAY + 8, 6), (oracle.Region(ARRAY + 8, data),))
    assert run.returned, run
    page = run.pages[ARRAY]
    got = struct.unpack_from("<6I", page, 8)
    assert list(got) == [(3 * v + 1) & 0xFFFF_FFFF for v in values]
    # around the array, the canary is untouched
    assert set(page[:8]) == set(page[8 + 24:]) == {0xA5}


def test_a_stray_write_shows_in_the_pages(arch):
    """One element past the array: the write lands in the canary, and the caller can see it."""
    data = bytes(16)
    st = state(arch, SCALE[arch], _args(arch, ARRAY, 5), (oracle.Region(ARRAY, data),))
    run = oracle.run(st)
    before = oracle.initial_pages(st)
    assert run.returned
    changed = [i for i, (a, b) in enumerate(zip(before[ARRAY], run.pages[ARRAY], strict=True)) if a != b]
    assert changed and min(changed) < 16 <= max(changed) < 20


def test_the_return_address_slot_and_the_stack_come_back(arch):
    run = go(arch, "ret")
    assert run.returned
    slot = run.pages[STACK][:8] if arch == "x86_64" else None
    if slot is not None:
        assert int.from_bytes(slot, "little") == RET


# --- faults -----------------------------------------------------------------------------------------

def test_x86_faults_arrive_as_what_they_are():
    segv = go("x86_64", "mov rax, qword ptr [rdi]\nret", {"rdi": 0x1234_5678})
    assert (segv.signal_name, segv.fault_addr, segv.fault_pc) == ("SIGSEGV", 0x1234_5678, CODE)
    gp = go("x86_64", "movaps xmm0, xmmword ptr [rsp + 8]\nret")     # [rsp+8] is 16-byte misaligned
    assert (gp.signal_name, gp.si_code, gp.fault_pc) == ("SIGSEGV", SI_KERNEL, CODE)
    ill = go("x86_64", "nop\nud2")
    assert (ill.signal_name, ill.fault_pc) == ("SIGILL", CODE + 1)
    trap = go("x86_64", "int3\nret")
    assert (trap.signal_name, trap.fault_pc) == ("SIGTRAP", CODE + 1)     # a trap: the pc after int3
    fpe = go("x86_64", "xor ecx, ecx\ndiv rcx\nret")
    assert (fpe.signal_name, fpe.si_code, fpe.fault_pc) == ("SIGFPE", FPE_INTDIV, CODE + 2)
    code_write = go("x86_64", "mov byte ptr [rip], 0\nret")
    assert (code_write.signal_name, code_write.si_code) == ("SIGSEGV", SEGV_ACCERR)


def test_a64_faults_arrive_as_what_they_are(a64):
    segv = go(a64, "ldr x0, [x0]\nret", {"x0": 0x1234_5678})
    assert (segv.signal_name, segv.fault_addr, segv.fault_pc) == ("SIGSEGV", 0x1234_5678, CODE)
    ill = go(a64, "nop\n.word 0\nret")                                     # udf #0
    assert (ill.signal_name, ill.fault_pc) == ("SIGILL", CODE + 4)
    trap = go(a64, "brk #1\nret")
    assert (trap.signal_name, trap.fault_pc) == ("SIGTRAP", CODE)
    for insn in ("ldxr", "ldar"):                                          # exclusive / acquire: aligned only
        bus = go(a64, f"mov x1, sp\nadd x1, x1, #1\n{insn} x0, [x1]\nret")
        assert (bus.signal_name, bus.si_code, bus.fault_addr, bus.fault_pc) == \
            ("SIGBUS", BUS_ADRALN, STACK + 1, CODE + 8)


def test_a64_misaligned_sp_as_the_oracle_shows_it(a64):
    """Linux enables SP alignment checking, so an arm64 CPU raises SIGBUS here. qemu-user (7.2)
    does not check it: the run returns. docs/oracle.md lists this among what the oracle cannot see."""
    run = go(a64, "sub sp, sp, #8\nldr x0, [sp]\nadd sp, sp, #8\nret")
    if oracle.available(a64) == "native" or run.signal is not None:
        assert (run.signal_name, run.si_code) == ("SIGBUS", BUS_ADRALN)
    else:
        assert run.returned


def test_a_wrecked_stack_still_reports_its_fault(arch):
    """The handlers run on the runner's alternate stack, so a blob that destroyed its own stack
    pointer before faulting is still reported with the fault it raised."""
    src = "xor esp, esp\nud2" if arch == "x86_64" else "mov x1, #0\nmov sp, x1\n.word 0"
    run = go(arch, src)
    assert run.signal_name == "SIGILL" and run.fault_pc == CODE + (2 if arch == "x86_64" else 8)


def test_data_is_not_executable(arch):
    reg = "rdi" if arch == "x86_64" else "x0"
    jump = "jmp rdi" if arch == "x86_64" else "br x0"
    run = go(arch, jump, {reg: STACK - 64})
    assert (run.signal_name, run.fault_pc) == ("SIGSEGV", STACK - 64)


def test_const_regions_are_read_only(arch):
    store = "mov dword ptr [rdi], 1\nret" if arch == "x86_64" else "str w1, [x0]\nret"
    run = go(arch, store, _args(arch, ARRAY), (oracle.Region(ARRAY, bytes(16), writable=False),))
    assert (run.signal_name, run.si_code, run.fault_addr) == ("SIGSEGV", SEGV_ACCERR, ARRAY)


# --- confinement: a system call never runs -----------------------------------------------------------

def _create(arch: str, path_addr: int) -> str:
    """open(path, O_CREAT | O_WRONLY, 0644): creates the marker file if it runs."""
    if arch == "x86_64":
        return f"mov eax, 2\nmov rdi, {path_addr:#x}\nmov esi, 0x41\nmov edx, 0x1a4\nsyscall\nret"
    return (f"mov x0, #-100\nmov x1, #{path_addr:#x}\nmov x2, #0x41\nmov x3, #0x1a4\n"
            "mov x8, #56\nsvc #0\nret")


def test_a_system_call_does_not_run(arch, tmp_path):
    marker = tmp_path / "created-by-the-blob"
    path = oracle.Region(ARRAY, str(marker).encode() + b"\0", writable=False)
    run = go(arch, _create(arch, ARRAY), regions=(path,))
    assert run.signal_name == "SIGSYS" and run.syscall == (2 if arch == "x86_64" else 56)
    assert run.fault_pc == CODE + len(assemble(arch, _create(arch, ARRAY))) - (3 if arch == "x86_64" else 8)
    assert not marker.exists()


def test_exit_and_write_do_not_run(arch):
    """exit_group(42) would end the child with code 42, write(1, ...) would put bytes in the runner's
    answer stream: neither happens, and the next run on the same runner reads back cleanly."""
    if arch == "x86_64":
        exits = "mov edi, 42\nmov eax, 231\nsyscall\nret"
        writes = "mov edi, 1\nmov rsi, rsp\nmov edx, 64\nmov eax, 1\nsyscall\nret"
    else:
        exits = "mov x0, #42\nmov x8, #94\nsvc #0\nret"
        writes = "mov x0, #1\nmov x1, sp\nmov x2, #64\nmov x8, #64\nsvc #0\nret"
    for src, nr in ((exits, 231 if arch == "x86_64" else 94), (writes, 1 if arch == "x86_64" else 64)):
        run = go(arch, src)
        assert (run.signal_name, run.syscall, run.error) == ("SIGSYS", nr, "")
    assert go(arch, "ret").returned


def test_int80_is_a_system_call_too():
    run = go("x86_64", "mov eax, 1\nmov ebx, 42\nint 0x80\nret")      # i386 exit(42)
    assert (run.signal_name, run.syscall, run.fault_pc) == ("SIGSYS", 1, CODE + 10)


def test_the_runner_has_one_svc_and_the_child_unmaps_it(a64, tmp_path):
    """Under qemu-user, seccomp is unavailable (qemu refuses PR_SET_SECCOMP), so the AArch64 runner
    keeps its only svc on a page it unmaps before the jump: a blob that branches there faults."""
    base = wire.WINDOW[0]
    words = struct.unpack(f"<{len(runner.code(a64, base)) // 4}I", runner.code(a64, base))
    assert [i for i, w in enumerate(words) if w & 0xFFE0001F == 0xD4000001] == [0]
    assert go(a64, "ret").returned                                          # starts the runner
    gadget = process._runners[a64].base + wire.TEXT - 4
    marker = tmp_path / "created-through-the-gadget"
    path = oracle.Region(ARRAY, str(marker).encode() + b"\0", writable=False)
    run = go(a64, "br x9", {"x0": (1 << 64) - 100, "x1": ARRAY, "x2": 0x41, "x3": 0o644, "x8": 56,
                            "x9": gadget}, (path,))
    assert (run.signal_name, run.fault_pc) == ("SIGSEGV", gadget)
    assert not marker.exists()


# --- time and errors --------------------------------------------------------------------------------

def test_a_spinning_blob_times_out(arch):
    spin = "spin: jmp spin" if arch == "x86_64" else "spin: b spin"
    run = go(arch, spin, timeout=0.5)
    assert run.timeout and not run.returned and run.signal is None
    assert go(arch, "ret").returned                                        # the runner carries on


def test_overlapping_regions_are_an_error(arch):
    run = go(arch, "ret", regions=(oracle.Region(ARRAY, bytes(32)), oracle.Region(ARRAY + 16, bytes(8))))
    assert "region 2 at 0x600010 overlaps region 1" in run.error and not run.returned


def test_one_page_cannot_have_two_protections(arch):
    run = go(arch, "ret", regions=(oracle.Region(ARRAY, bytes(32)), oracle.Region(ARRAY + 64, bytes(8), False)))
    assert "share the page 0x600000" in run.error


def test_the_runner_window_is_refused(arch):
    run = go(arch, "ret", regions=(oracle.Region(wire.WINDOW[0] + 0x5000, bytes(8)),))
    assert "overlaps the window the oracle's runner lives in" in run.error


def test_a_taken_address_is_a_clear_error(arch):
    """An address the runner's process already uses (its kernel stack natively; under qemu, qemu's
    own memory) is refused by MAP_FIXED_NOREPLACE, or a hint that the kernel did not honour."""
    assert go(arch, "ret").returned
    maps = Path(f"/proc/{process._runners[arch].proc.pid}/maps").read_text()
    name = "[stack]" if oracle.available(arch) == "native" else "qemu"
    start = next(int(m.group(1), 16) for m in re.finditer(r"^([0-9a-f]+)-\S+ .*$", maps, re.M)
                 if name in m.group(0))
    run = go(arch, "ret", regions=(oracle.Region(start, bytes(8)),))
    assert not run.returned
    assert f"cannot map region 1 at {start:#x}" in run.error and "File exists" in run.error
    assert go(arch, "ret").returned


def test_bad_register_values_are_errors():
    assert "unknown register" in go("x86_64", "ret", {"eax": 1}).error
    assert "only CF PF AF ZF SF OF and DF" in go("x86_64", "ret", {"rflags": 0x100}).error   # TF
    assert "does not fit in 64 bits" in go("x86_64", "ret", {"rax": 1 << 64}).error
    assert "mxcsr = 0x10000 does not fit in 16 bits" in go("x86_64", "ret", {"mxcsr": 0x10000}).error


def test_an_unmasked_x87_exception_in_the_entry_state_is_the_blobs_fault():
    """fpsw is arbitrary at entry: a pending exception the control word unmasks is raised by the
    blob's first x87 instruction (#MF), not while the state is loaded."""
    run = go("x86_64", "nop\nfld1\nret", {"fpsw": 0x1, "fpcw": 0x37E})
    assert (run.signal_name, run.fault_pc) == ("SIGFPE", CODE + 1)


def test_run_many_keeps_order_across_architectures_and_errors():
    states = [state("x86_64", "mov eax, 1\nret"), state("x86_64", "ret", {"eax": 1}),
              state("x86_64", "mov eax, 3\nret")]
    if oracle.available("aarch64"):
        states.insert(1, state("aarch64", "mov x0, #2\nret"))
    runs = oracle.run_many(states)
    expect = [1, 2, 3] if len(states) == 4 else [1, 3]
    assert [r.regs.get("rax", r.regs.get("x0")) for r in runs if r.returned] == expect
    assert sum(bool(r.error) for r in runs) == 1


def test_the_result_names_the_oracle_and_the_cpu(arch):
    run = go(arch, "ret")
    assert run.oracle == oracle.available(arch) and run.cpu == oracle.cpu_name(arch)
    if run.oracle == "qemu":
        assert run.cpu.startswith("qemu-aarch64 ")
    assert signal.Signals.SIGSYS.name == "SIGSYS"


def test_a_forked_process_gets_its_own_runner():
    """A process forked after the oracle started (a worker pool) must not share the parent's pipes."""
    assert go("x86_64", "mov eax, 7\nret").regs["rax"] == 7
    pid = os.fork()
    if pid == 0:                                       # pragma: no cover - the child reports by exit code
        ok = go("x86_64", "mov eax, 8\nret").regs.get("rax") == 8
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert go("x86_64", "mov eax, 9\nret").regs["rax"] == 9


def test_where_memfds_cannot_be_executed_a_private_file_is(monkeypatch):
    start = process.Runner._start

    def no_memfd(self, path, fds):
        if path.startswith("/proc/self/fd/"):
            raise PermissionError(13, "Permission denied (vm.memfd_noexec)")
        return start(self, path, fds)
    process.shutdown()
    monkeypatch.setattr(process.Runner, "_start", no_memfd)
    try:
        assert go("x86_64", "mov eax, 4\nret").regs["rax"] == 4
        tmp = process._runners["x86_64"]._tmp
        assert tmp is not None and os.path.isdir(tmp.name)
    finally:
        process.shutdown()
    assert not os.path.exists(tmp.name)
