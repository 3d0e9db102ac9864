"""Runs a blob symbolically, path by path, with angr's VEX engine: blob + spec -> `Exploration`.

angr's `ClaripyDataMixin` gives the meaning of every VEX operation and flag helper; the state,
the memory model, forking and every exit are handled here, so nothing is concretised, skipped
or replaced by a fresh symbol behind the proof's back (no SimState, no resilience options).
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import TYPE_CHECKING

import claripy
import pyvex

from . import entry as entry_mod
from . import isa, names, pieces, smt_bridge, tables, vexops
from .arch import FP_CALLEE_SAVED, Abi
from .blob import Blob
from .exploration import Exploration, PathResult, Violation
from .isa import corrections
from .machine import BV, STACK, Memory, RegisterFile, bv, split_base
from .relocated import Relocated
from .rodata import Fixup
from .spec import Spec
from .vexsem import semantics

if TYPE_CHECKING:
    from angr import sim_options as o
    from angr.engines.vex.claripy.datalayer import ClaripyDataMixin
    from angr.errors import SimError
else:
    ClaripyDataMixin, o, SimError = semantics()

MAX_PATHS = 4096
# Paths are merged only once this many are live or finished. Below it, one path per branch
# outcome keeps every output a plain term of the inputs, which solvers find far easier than the
# nested if-then-else terms merging builds (a branchy sort5: 120 paths, every obligation under
# 0.2 s; merged into 17 paths, its permutation obligations take 5-8 s each).
MERGE_THRESHOLD = 256
MAX_SYMBOLIC_OFFSETS = 4096
MAX_TABLE_TARGETS = 256     # targets of one jump through a table, enumerated one by one
CODE_WINDOW = 0x40000       # how far below its own address a concrete run may place the code
SOLVER_TIMEOUT_MS = 30_000


_FP_CONTROL_WHAT = {"mxcsr": "MXCSR control bits (rounding, flush-to-zero, exception masks)",
                    "fpcw": "x87 control word", "fpcr": "FPCR (rounding, flush-to-zero, default NaN)"}

# VEX guest-state names -> the architectural names users and the replay know them by.
_ARCH_NAMES = {("aarch64", "xsp"): "sp", ("aarch64", "cc_dep1"): "nzcv", ("x86_64", "cc_dep1"): "rflags",
               ("x86_64", "ac"): "acflag", ("x86_64", "id"): "idflag"}


_X86_DIVMOD = {"Iop_DivModU64to32": False, "Iop_DivModS64to32": True,
               "Iop_DivModU128to64": False, "Iop_DivModS128to64": True}
_A64_DIV = {"Iop_DivU32", "Iop_DivS32", "Iop_DivU64", "Iop_DivS64"}


class _End(Exception):
    """The current path is over: `status` is a DESIGN §5 reason code or 'returned'."""

    def __init__(self, status: str, message: str = ""):
        super().__init__(message)
        self.status, self.message = status, message


class _Jump(Exception):
    def __init__(self, target: int):
        super().__init__(target)
        self.target = target


@dataclass
class _Path:
    addr: int
    regs: RegisterFile
    mem: Memory
    pc: list
    visits: dict[int, int] = field(default_factory=dict)
    trace: list[int] = field(default_factory=list)
    pending: list[tuple[BV, int, int, int]] = field(default_factory=list)  # (off, n, sp_off, addr)
    # A model of the first `witness_len` constraints of pc (the inputs of one execution that
    # takes this path), kept from the last feasibility check: most questions it answers alone.
    witness: object = None
    witness_len: int = 0
    # The instruction being executed, with its verified form and what its correction captured
    # before it ran (isa/corrections.py): applied when the instruction is over.
    insn: tuple | None = None

    def fork(self, cond: claripy.ast.Bool, addr: int, witness=None) -> _Path:
        return _Path(addr, self.regs.copy(), self.mem.copy(), self.pc + [cond], dict(self.visits),
                     list(self.trace), list(self.pending), witness=witness, witness_len=len(self.pc) + 1,
                     insn=self.insn)


class _Feasibility:
    """One incremental Z3 solver for every feasibility question of an exploration.

    A path's condition is the list `pc`; paths forked from one another share their prefix
    (the same claripy objects), so the solver keeps one assertion scope per constraint and, for
    each question, pops back to the longest prefix it shares with the path asked about. Cloning a
    solver per fork (claripy's `branch`) cost more than all the checks together.
    """

    def __init__(self, root: list, pre: list | None = None):
        """`root`: the machine model's assumptions (claripy); `pre`: the spec's precondition as
        the Z3 terms the obligations are built from (`_path_pre`), never re-translated."""
        import z3

        self._z3 = z3
        self.solver = z3.Solver()
        self.solver.set("timeout", SOLVER_TIMEOUT_MS)
        for c in root:
            self.solver.add(self._convert(c))
        self.solver.add(*(pre or []))
        self.stack: list = []

    def _convert(self, c):
        """The constraint in Z3, or True where claripy cannot convert it (n-ary distinct): a
        constraint left out only makes more paths feasible, which is sound."""
        try:
            return smt_bridge.to_z3(c)
        except claripy.ClaripyError:
            return self._z3.BoolVal(True)

    def satisfiable(self, pc: list, cond, witness=None, witness_len: int = 0):
        """None only when pc ∧ cond is unsatisfiable, else a model of it (True when the solver
        could not decide: following a path that cannot happen only explores more, so that is
        sound). A `witness` model of pc[:witness_len] that satisfies the rest and cond answers
        without the solver."""
        if witness is not None and all(self._holds(witness, c) for c in [*pc[witness_len:], cond]):
            return witness
        n = min(len(self.stack), len(pc))
        i = 0
        while i < n and self.stack[i] is pc[i]:
            i += 1
        if len(self.stack) > i:
            self.solver.pop(len(self.stack) - i)
            del self.stack[i:]
        for c in pc[i:]:
            self.solver.push()
            self.solver.add(self._convert(c))
            self.stack.append(c)
        try:
            r = self.solver.check(self._convert(cond))
        except self._z3.Z3Exception:
            return True
        if r == self._z3.unsat:
            return None
        return self.solver.model() if r == self._z3.sat else True

    def _holds(self, model, c) -> bool:
        try:
            return self._z3.is_true(model.eval(smt_bridge.to_z3(c), model_completion=True))
        except (self._z3.Z3Exception, AttributeError, claripy.ClaripyError):
            return False


class _Engine(ClaripyDataMixin):
    """Executes one IRSB on a `_Path`; calls back into `Explorer` for everything that matters."""

    def __init__(self, explorer: Explorer):
        super().__init__(SimpleNamespace(arch=explorer.state.arch))
        self.ex = explorer
        # Extended IR ops on; floating point off, so FP code is reported unsupported, not guessed.
        self.state = SimpleNamespace(options={o.EXTENDED_IROP_SUPPORT}, arch=explorer.state.arch)
        self.path: _Path = None  # type: ignore[assignment]  # set by run() before any handler

    def run(self, path: _Path, irsb: pyvex.IRSB) -> None:
        self.path = path
        self.handle_vex_block(irsb)

    def _handle_vex_stmt_IMark(self, stmt):
        self.ex.on_instruction(self.path, stmt.addr + stmt.delta, stmt.len)

    # Floating-point *types* are carried as raw bits: moving a d/s register or spilling it is
    # exact. Floating-point *arithmetic* reaches `_perform_vex_expr_Op`, which angr refuses
    # with floating point disabled, and the path ends UNKNOWN(unsupported-instruction).

    def _handle_vex_expr_Get(self, expr):
        return self.path.regs.get(expr.offset, pyvex.get_type_size(expr.ty) // 8)

    def _handle_vex_stmt_Put(self, stmt):
        data = self._handle_vex_expr(stmt.data)
        if not isinstance(data, claripy.ast.BV):
            raise _End("unsupported-instruction", self.ex.insn_text(self.path, "uses floating point"))
        self.path.regs.put(stmt.offset, data)

    def _handle_vex_expr_Load(self, expr):
        addr = self._handle_vex_expr(expr.addr)
        n = pyvex.get_type_size(expr.ty) // 8
        return self.ex.load(self.path, addr, n)

    def _handle_vex_stmt_Store(self, stmt):
        addr = self._handle_vex_expr(stmt.addr)
        data = self._handle_vex_expr(stmt.data)
        if not isinstance(data, claripy.ast.BV):
            raise _End("unsupported-instruction", self.ex.insn_text(self.path, "uses floating point"))
        self.ex.store(self.path, addr, data)

    def _handle_vex_stmt_Exit(self, stmt):
        guard = self._handle_vex_expr(stmt.guard)
        self.ex.on_exit(self.path, guard != 0, stmt.dst.value, stmt.jumpkind)

    def _handle_vex_defaultexit(self, expr, jumpkind):
        target = self._handle_vex_expr(expr)
        self.ex.on_default_exit(self.path, target, jumpkind)

    def _perform_vex_expr_Op(self, op, args):
        if op.startswith("Iop_Reinterp"):   # same bits, another type: exact on raw bits
            return args[0]
        if op in _X86_DIVMOD:
            narrow = self.ex.divide_overflow(self.path, op, args)
            if narrow is not None:
                return narrow
        extra = vexops.lookup(op)
        if extra is not None:
            return self._vexops(op, extra, args)
        try:
            res = super()._perform_vex_expr_Op(op, args)
        except (SimError, claripy.ClaripyError) as e:
            raise _End("unsupported-instruction",
                       self.ex.insn_text(self.path, f"needs VEX operation {op}, not modelled ({e})")) from None
        if op in _A64_DIV and self.ex.blob.arch == "aarch64":
            # AArch64 udiv/sdiv by zero give 0 (no trap); SMT-LIB's bvudiv by zero gives all ones.
            return claripy.If(args[1] == 0, claripy.BVV(0, res.size()), res)
        return res

    def _perform_vex_expr_CCall(self, func_name, ty, args, func=None):
        mine = corrections.ccall(func_name, args, self.ex.ctx(self.path))
        if mine is not None:
            return mine
        extra = vexops.ccall(func_name)
        if extra is not None:
            return self._vexops(func_name, extra, args)
        try:
            return super()._perform_vex_expr_CCall(func_name, ty, args, func)
        except (SimError, claripy.ClaripyError) as e:
            raise _End("unsupported-instruction",
                       self.ex.insn_text(self.path, f"needs VEX helper {func_name}, not modelled ({e})")) from None

    def _vexops(self, name: str, f, args):
        try:
            return f(args)
        except vexops.Unmodelled as e:
            raise _End("unsupported-instruction", self.ex.insn_text(self.path, f"needs {name}: {e}")) from None

    def _unsupported(self, what: str):
        raise _End("unsupported-instruction", self.ex.insn_text(self.path, f"lifts to VEX {what}, not modelled"))

    def _handle_vex_stmt_Dirty(self, stmt):
        self._unsupported(f"dirty helper {stmt.cee.name}")

    def _handle_vex_stmt_CAS(self, stmt):
        # Only xchg with memory (implicitly locked): other locked forms stay unsupported.
        insn = isa.decode_insn(self.ex.blob, self.ex._current)
        if stmt.dataHi is not None or insn is None or insn.mnemonic not in ("xchg", "lock xchg"):
            self._unsupported("CAS (a locked read-modify-write other than xchg)")
        addr = self._handle_vex_expr(stmt.addr)
        self.tmps[stmt.oldLo] = vexops.compare_and_swap(
            addr, self._handle_vex_expr(stmt.expdLo), self._handle_vex_expr(stmt.dataLo),
            load=lambda a, n: self.ex.load(self.path, a, n), store=lambda a, d: self.ex.store(self.path, a, d),
            require=lambda ok, msg: self.ex._assume(self.path, ok, "memory-safety", self.ex.insn_text(self.path, msg)))

    def _handle_vex_stmt_LLSC(self, stmt):
        self._unsupported("load-linked/store-conditional")

    def _handle_vex_stmt_PutI(self, stmt):
        self._unsupported("PutI (x87 register stack)")

    def _handle_vex_expr_GetI(self, expr):
        self._unsupported("GetI (x87 register stack)")

    def _handle_vex_stmt_LoadG(self, stmt):
        self._unsupported("guarded load")

    def _handle_vex_stmt_StoreG(self, stmt):
        self._unsupported("guarded store")


class _Ctx:
    """The executor's side of `isa.corrections.Ctx`: one path's registers, flags and faults."""

    def __init__(self, ex: Explorer, path: _Path):
        self.ex, self.path, self.arch = ex, path, ex.blob.arch

    def reg(self, name: str) -> BV:
        if name in ("xzr", "wzr"):
            return claripy.BVV(0, 64)
        if name == "fpcw.entry":
            return self.ex.state.entry_values["fpcw"]
        if name.startswith("$cpu."):
            return self.ex.state.cpu[name[5:]]
        off, size = self.ex.reg_slot(name)
        return self.path.regs.get(off, size)

    def set_reg(self, name: str, value: BV) -> None:
        off, size = self.ex.reg_slot(name)
        assert value.size() == size * 8, (name, value.size())
        self.path.regs.put(off, value)

    def flags(self) -> BV:
        regs, arch = self.path.regs, self.ex.state.arch
        thunk = [regs.get(arch.registers[r][0], 8) for r in ("cc_op", "cc_dep1", "cc_dep2", "cc_ndep")]
        # angr's own helper, through the engine, which splits a thunk whose cc_op is an if-then-else
        # (after a shift by a variable count) into cases.
        return self.ex.engine._perform_vex_expr_CCall("amd64g_calculate_rflags_all", "Ity_I64", thunk)

    def set_flags(self, value: BV) -> None:
        arch = self.ex.state.arch
        for r, v in (("cc_op", claripy.BVV(0, 64)), ("cc_dep1", value), ("cc_dep2", claripy.BVV(0, 64)),
                     ("cc_ndep", claripy.BVV(0, 64))):
            self.path.regs.put(arch.registers[r][0], v)

    def fresh(self, bits: int, what: str) -> BV:
        self.ex._fresh += 1
        return bv(names.machine(f"undef{self.ex._fresh}"), bits)

    def sp_offset(self) -> int:
        return self.ex._stack_pointer_offset(self.path)

    def fault(self, cond, kind: str, message: str) -> None:
        if cond.is_true():
            self.ex._violate(self.path, kind, self.ex._current, message, cond)
            raise _End("violation", message)
        self.ex._assume(self.path, claripy.Not(cond), kind, message)


class Explorer:
    """Exploration of every feasible path from the entry to its end, lowest address first, with
    paths merged at join points once many are live (see `_run_path`)."""

    def __init__(self, blob: Blob, spec: Spec, abi: Abi, *, max_paths: int = MAX_PATHS,
                 progress=None, merge_threshold: int = MERGE_THRESHOLD):
        self.blob, self.spec, self.abi = blob, spec, abi
        self.state = entry_mod.build(blob, spec.signature, abi, spec.lengths)
        self.engine = _Engine(self)
        self.max_paths = max_paths
        self.merge_threshold = merge_threshold
        self.progress = progress
        self.pre = _path_pre(spec)
        self.paths: list[PathResult] = []
        self.violations: list[Violation] = []
        self._blocks: dict[int, pyvex.IRSB] = {}
        self._sp_off: int = self.state.arch.sp_offset  # type: ignore[assignment]
        self._current = 0
        self._symbols: dict[str, int] = {}
        self._queue: list[_Path] = []
        self._sat: _Feasibility | None = None
        self.merges = 0
        self._decisions: dict[int, isa.Decision] = {}
        self.relocated = Relocated(blob, self.state.bases)
        self._fixup: Fixup | None = None     # the relocation in the instruction being executed
        self._fits: list[BV] = []      # self-relative table entries, known to fit 32 bits (entry.build)
        self.optimised = 0      # blocks run on VEX's optimised IR (it kept every effect: _lift)
        self._fresh = 0
        arch = self.state.arch
        self._flag_offsets = frozenset(arch.registers[r][0] for r in ("cc_op", "cc_dep1", "cc_dep2", "cc_ndep")
                                       if r in arch.registers)

    # --- driver ---------------------------------------------------------------------------

    def explore(self) -> Exploration:
        t0 = time.monotonic()
        root = list(self.state.assumptions)
        self._sat = _Feasibility(root, self.pre)
        mem = Memory(self.state.regions, self._initial_bytes())
        self._queue = [_Path(self.blob.entry, self.state.regs.copy(), mem, [])]
        truncated = False
        while self._queue:
            if len(self.paths) + len(self._queue) > self.max_paths:
                truncated = True
                break
            self._run_path(self._take())
            if self.progress:
                self.progress(len(self.paths), len(self._queue))
        symbols = dict(smt_bridge.widths(root + list(self.state.entry_values.values()) + [self.state.ret_addr]))
        return Exploration(
            arch=self.blob.arch, abi=self.abi.name, paths=tuple(self.paths),
            violations=tuple(self.violations), truncated=truncated,
            assumptions=tuple(smt_bridge.to_text(a) for a in self.state.assumptions),
            symbols={**symbols, **self._symbols}, seconds=time.monotonic() - t0,
            entry_registers={_ARCH_NAMES.get((self.blob.arch, k), k): smt_bridge.to_text(v)
                             for k, v in self.state.entry_values.items()
                             if not v.concrete},
            arrays=tuple((a.name, a.reg, a.elem_bits, a.length, a.const, a.count) for a in self.state.arrays),
            return_address=smt_bridge.to_text(self.state.ret_addr),
            merges=self.merges,
            rodata=_windows(self.blob, self.state.code),
        )

    # Scheduling and state merging. The queue holds every path not yet finished, each stopped at
    # the start of a block; the path at the lowest address runs, one block at a time, and yields
    # as soon as another waits at a lower address. Paths that meet at one address are merged
    # into one whose values are if-then-else terms over which of them the input takes (the
    # classic ite merge): a branchy sort is then one path, not n! of them. A merge is exact, so
    # nothing is lost: see `_mergeable` for when two states may be merged.

    def _take(self) -> _Path:
        i = min(range(len(self._queue)), key=lambda k: self._queue[k].addr)
        return self._queue.pop(i)

    def _run_path(self, path: _Path) -> None:
        try:
            while True:
                if self._queue:
                    if len(self._queue) + len(self.paths) >= self.merge_threshold:
                        path = self._merge_waiting(path)
                    if min(q.addr for q in self._queue) < path.addr:
                        self._queue.append(path)   # another path is behind this one: it goes first
                        return
                if not self.blob.contains(path.addr):
                    msg = (f"execution leaves the blob at {self._current:#x} for {path.addr:#x}: only "
                           "the blob's own bytes may run")
                    self._violate(path, "policy", self._current, msg, claripy.true())
                    raise _End("violation", msg)
                try:
                    self.engine.run(path, self._lift(path.addr))
                except _Jump as j:
                    self._flush_stack_checks(path)
                    path.addr = j.target
        except _End as e:
            self._finish(path, e.status, e.message)

    def _merge_waiting(self, path: _Path) -> _Path:
        for q in [q for q in self._queue if q.addr == path.addr]:
            guard = _exclusive(path.pc, q.pc)
            if guard is not None and _mergeable(path, q, self._flag_offsets):
                self._queue.remove(q)
                path = _merge(path, q, *guard)
                self.merges += 1
        return path

    def _lift(self, addr: int) -> pyvex.IRSB:
        irsb = self._blocks.get(addr)
        if irsb is None:
            off = addr - self.blob.base
            # VEX's optimiser deletes loads whose value is unused, and a load can fault. The proof
            # runs on the unoptimised IR unless the optimised one keeps every effect of it,
            # instruction by instruction (`_effects`): then it is the same computation, smaller.
            # A block with an instruction nverify corrects stays unoptimised whatever: the optimiser
            # would fold a later condition straight from VEX's flag values, around the correction.
            code, size = self.blob.image[off:], self.blob.size - off
            irsb = pyvex.lift(code, addr, self.state.arch, opt_level=0, max_bytes=size)
            if not any(self._corrected(st.addr, st.len) for st in irsb.statements
                       if isinstance(st, pyvex.stmt.IMark)):
                fast = pyvex.lift(code, addr, self.state.arch, opt_level=1, max_bytes=size)
                if _effects(fast, self._sp_off) == _effects(irsb, self._sp_off):
                    irsb = fast
                    self.optimised += 1
            self._blocks[addr] = irsb
        return irsb

    def _corrected(self, addr: int, length: int) -> bool:
        """Whether nverify changes VEX's values after the instruction (or refuses it). Alignment
        rules do not count: they are checked at each load and store, which both lifts keep; nor
        does the sp alignment check, which reads only the stack pointer, whose every write both
        lifts keep in place (`_effects`)."""
        d = self._decision(addr, length)
        f = d.form
        # a relocated instruction's value is replaced after it (verifier/relocated.py), and so is
        # the code's own address a `lea r, [rip+d]`/`adr` leaves (`$code + offset`, end_instruction):
        # the optimiser must not fold either into the next instruction first. (It did: `lea rax,
        # [rip+f]; and eax, 0x80000000` computed from the lifting address proved 0, and returns
        # 0x80000000 in a PIE run where bit 31 of the code's address is set; co-simulation places
        # the code low, where that bit is 0 too.)
        code_value = self.state.code is not None and d.insn is not None and isa.code_address(self.blob, d.insn)
        return d.kind != "ok" or f is None or bool(f.undefined) or f.fix not in ("", "sp-align") \
            or bool(self.relocated.at(addr, length or 1)) or code_value

    def _decision(self, addr: int, length: int | None) -> isa.Decision:
        """The verified instruction set's word on the instruction at addr, once per exploration
        (`length`: what VEX lifted, which every decoder must agree with)."""
        d = self._decisions.get(addr)
        if d is None:
            d = self._decisions[addr] = isa.check(self.blob, addr, length)
        return d

    def _initial_bytes(self) -> dict[str, object]:
        init: dict[str, object] = {}
        for a in self.state.arrays:
            elems = [bv(f"{a.name}.{i}", a.elem_bits) for i in range(a.length)]
            init[a.name] = functools.partial(_element_byte, elems, a.elem_bits // 8)
        ra = self.state.ret_addr
        on_stack = self.abi.link_reg is None

        def stack_byte(off: int) -> BV:
            if on_stack and 0 <= off < 8:
                return claripy.Extract(off * 8 + 7, off * 8, ra)
            return bv(names.stack_byte(off), 8)
        init[STACK] = stack_byte
        for n, ro in enumerate(self.blob.rodata):
            init[names.rodata(n)] = functools.partial(_data_byte, ro.data, self._linked_bytes(n))
        return init

    def _linked_bytes(self, n: int) -> dict[int, BV]:
        """The bytes of region n's entries that hold code addresses (a jump table's), as the linker
        writes them: `$code + target`, or that minus the entry's own address (rodata.Link)."""
        out: dict[int, BV] = {}
        code, base = self.state.code, self.state.regions[names.rodata(n)].base
        for k in self.blob.rodata[n].links:
            assert code is not None
            value = code + k.target - (base + k.at) if k.relative else code + k.target
            if k.relative:
                self._fits.append(value)
            for i in range(k.width):
                out[k.at + i] = claripy.Extract(8 * i + 7, 8 * i, value)
        return out

    # --- callbacks from the engine ---------------------------------------------------------

    def insn_text(self, path: _Path, what: str) -> str:
        insn = isa.decode_insn(self.blob, self._current)
        shown = insn.text() if insn else "?"
        return f"{shown} at {self._current:#x} {what}"

    def ctx(self, path: _Path) -> _Ctx:
        return _Ctx(self, path)

    def on_instruction(self, path: _Path, addr: int, length: int | None = None) -> None:
        self.end_instruction(path)
        self._flush_stack_checks(path)
        self._current = addr
        self._judge(path, addr, length)
        n = path.visits.get(addr, 0) + 1
        path.visits[addr] = n
        path.trace.append(addr)
        if n > self.spec.loop_bound:
            insn = isa.decode_insn(self.blob, addr)
            raise _End("loop-bound", f"the instruction at {addr:#x} ({insn.text() if insn else '?'}) "
                       f"ran more than {self.spec.loop_bound} times on one path (the loop bound); if "
                       "the loop does end, raise it with (set-info :nverify-loop-bound N)")
        d = self._decisions[addr]
        assert d.form is not None and d.insn is not None
        self._fixup = self._relocation(d.insn)
        path.insn = (d.form, d.insn, corrections.before(d.form, d.insn, self.ctx(path)))

    def _shown(self, region: str) -> str:
        """A read-only region by the section it holds."""
        n = names.rodata_index(region)
        assert n is not None
        return self.blob.rodata[n].name

    def _named(self, region: str) -> str:
        return region if region in self.state.arrays_by_name else f"read-only data {self._shown(region)}"

    def _relocation(self, insn: isa.Insn) -> Fixup | None:
        """The relocation to read-only data this instruction holds, checked to feed what its type
        says (verifier/relocated.py); an instruction it cannot model ends the path unknown."""
        fixups = self.relocated.at(insn.addr, insn.size)
        if not fixups:
            return None
        why = self.relocated.problem(insn)
        if why is not None:
            raise _End("unsupported-instruction", why)
        return fixups[0]

    def _judge(self, path: _Path, addr: int, length: int | None) -> None:
        """The verified instruction set's word on the instruction at addr, before any of it runs:
        a forbidden one ends the path refuted, one outside the set ends it unknown."""
        d = self._decision(addr, length)
        if d.kind == "ok":
            return
        if d.kind == "unsupported":
            raise _End("unsupported-instruction", d.message)
        reason = "undecodable" if d.kind == "undecodable" else "policy"
        self._violate(path, reason, addr, d.message, claripy.true())
        raise _End("violation", d.message)

    def end_instruction(self, path: _Path) -> None:
        """Apply the correction of the instruction that just finished (isa/corrections.py)."""
        if path.insn is None:
            return
        form, insn, captured = path.insn
        path.insn = None
        corrections.after(form, insn, self.ctx(path), captured)
        self._fixup = None
        if self.blob.arch == "aarch64" and insn.mnemonic in ("b", "bl") and any(
                f.region == pieces.CODE and 0 <= f.at - (insn.addr - self.blob.base) < insn.size
                for f in self.blob.fixups):
            # A `b` or `bl` the linker relocates (JUMP26/CALL26, to or from a part in another section) may reach
            # its target through a veneer when the part lies beyond +-128 MiB, and a veneer (ld:
            # `adrp x16; add x16; br x16`) clobbers IP0/IP1, as AAPCS64 allows it to. The proof
            # linked the jump directly: `mov x16, x0; b f.cold` / `add x0, x16, #1` proved
            # `ret = x + 1`, and returned the part's address + 1 once linked far apart.
            ctx = self.ctx(path)
            for name in ("x16", "x17"):
                off, _ = self.reg_slot(name)
                path.regs.put(off, ctx.fresh(64, f"{name} after a linker veneer"))
        if self.state.code is not None and insn.mnemonic == "bl":
            off, _ = self.reg_slot("x30")       # the return address, `$code + offset`
            path.regs.put(off, self.state.code + (insn.addr + insn.size - self.blob.base))
            return
        if self.state.code is not None and isa.code_address(self.blob, insn):
            # the code's own address, as a value: where the linker puts the function, plus
            off, size = self.reg_slot(insn.regs[0])
            lifted = path.regs.get(off, size)
            assert lifted.concrete and size == 8
            path.regs.put(off, self.state.code + (lifted.concrete_value - self.blob.base))
            return
        fixups = self.relocated.at(insn.addr, insn.size)
        # only where the destination is the address itself: x86 `lea`, AArch64 adr/adrp/`add
        # :lo12:`. (x86 `add rax, [rip+.LC0]` is an ALU operation on the data the address holds;
        # mapping its sum as an address proved `3 + [.LC0] - placeholder` for `... - &.LC0`.)
        address_ops = ("lea",) if self.blob.arch == "x86_64" else ("adr", "adrp", "add")
        if fixups and insn.mnemonic in address_ops:
            off, size = self.reg_slot(insn.regs[0])
            value = self.relocated.value(fixups[0], path.regs.get(off, size))
            if value is None:
                raise _End("unsupported-instruction", f"{insn.text()} at {insn.addr:#x}: its relocated value "
                           "is not the address the relocation gives")
            path.regs.put(off, value)

    def divide_overflow(self, path: _Path, op: str, args):
        """x86 div/idiv fault (#DE) when the quotient does not fit the operand size; VEX only checks
        for zero (and lifts 8- and 16-bit division to the 32-bit operation: vexops.divide_fits).
        Returns the 8/16-bit division computed at its own width (vexops.narrow_divmod), or None."""
        insn = isa.decode_insn(self.blob, self._current)
        bits = vexops.x86_operand_bits(insn.raw) if insn is not None else args[1].size()
        signed = _X86_DIVMOD[op]
        ok = vexops.divide_fits(signed, args[0], args[1], bits)
        self._assume(path, ok, "policy", self.insn_text(path, "faults (#DE): the quotient does not fit its register"))
        return vexops.narrow_divmod(signed, args[0], args[1], bits)

    def on_exit(self, path: _Path, cond, target: int, jumpkind: str) -> None:
        if jumpkind == "Ijk_SigFPE_IntDiv" and self.blob.arch == "aarch64":
            return   # pyvex adds this exit for a zero divisor, but AArch64 division never traps
        if jumpkind == "Ijk_Boring":
            self._branch(path, cond, target)
            return
        if cond.is_false() or not self._feasible(path, cond):
            return
        side = path.fork(cond, target)
        try:
            self._jumpkind_end(side, jumpkind, target)
        except _End as e:
            self._finish(side, e.status, e.message)
        if cond.is_true() or not self._feasible(path, claripy.Not(cond)):
            raise _End("infeasible")
        path.pc.append(claripy.Not(cond))

    def _branch(self, path: _Path, cond, target: int) -> None:
        if cond.is_true():
            raise _Jump(target)
        if cond.is_false():
            return
        taken, fall = self._model(path, cond), self._model(path, claripy.Not(cond))
        if taken is not None and fall is not None:
            self._flush_stack_checks(path)
            self._queue.append(path.fork(cond, target, _witness(taken)))
            path.pc.append(claripy.Not(cond))
            path.witness, path.witness_len = _witness(fall), len(path.pc)
        elif taken is not None:
            raise _Jump(target)
        elif fall is None:
            raise _End("infeasible")

    def on_default_exit(self, path: _Path, target: BV, jumpkind: str) -> None:
        self.end_instruction(path)
        self._flush_stack_checks(path)
        if jumpkind == "Ijk_Ret":
            self._return(path, target)
        if jumpkind == "Ijk_Boring" and not target.concrete and self.state.code is not None:
            self._table_jump(path, target)
        if jumpkind in ("Ijk_Boring", "Ijk_Call", "Ijk_Yield"):
            if not target.concrete:
                msg = f"the jump at {self._current:#x} goes to a computed address (an indirect jump)"
                self._violate(path, "policy", self._current, msg, claripy.true())
                raise _End("violation", msg)
            t = target.concrete_value
            if not self.blob.contains(t):
                msg = (f"execution leaves the blob at {self._current:#x} for {t:#x}: only the "
                       "blob's own bytes may run")
                self._violate(path, "policy", self._current, msg, claripy.true())
                raise _End("violation", msg)
            last = isa.decode_insn(self.blob, self._current)
            if self.state.code is not None and last is not None and last.shape[-1:] != "i":
                # An indirect jump (allowed when the code's address is `$code`, for tables) to a
                # fixed number: that is an absolute address, not the lifting address of the unit's
                # bytes (`mov eax, 0x400014; jmp rax` proved, and dies of SIGSEGV once linked as
                # PIE). Only a direct jump's target moves with the code.
                msg = (f"the jump at {self._current:#x} goes to the fixed address {t:#x}; where the code lies "
                       "is not known, so no fixed address is the unit's code")
                self._violate(path, "policy", self._current, msg, claripy.true())
                raise _End("violation", msg)
            raise _Jump(t)
        self._jumpkind_end(path, jumpkind, target.concrete_value if target.concrete else None)

    def _table_jump(self, path: _Path, target: BV) -> None:
        """An indirect jump followed as a choice (verifier/tables.py): its target, case by case,
        must be `$code + offset` with a constant offset, each the start of an instruction of the
        unit (a target elsewhere is a policy violation); the path forks on the offsets. A target
        that does not reduce so stays an indirect jump (policy), as before."""
        code = self.state.code
        assert code is not None
        if names.CODE not in target.variables:
            return
        split = tables.cases(target, self._fits)
        if split is None:
            return
        by_offset: dict[int, list] = {}
        for cond, term in split:
            v = tables.offset(term, code)
            if v is None:
                if self._feasible(path, cond):
                    return
                continue
            by_offset.setdefault(v, []).append(cond)
        starts = isa.instruction_starts(self.blob)
        choices = []
        for v, conds in sorted(by_offset.items()):
            cond = claripy.Or(*conds) if len(conds) > 1 else conds[0]
            if not self._feasible(path, cond):
                continue
            lo, hi = self.blob.piece(self.blob.base)
            if self.blob.base + v not in starts or not lo <= self.blob.base + v < hi:
                msg = (f"the jump at {self._current:#x} may go to the function's address + {_signed(v):#x}, "
                       "which is not an instruction of the unit")
                self._violate(path, "policy", self._current, msg, cond)
                continue
            choices.append((v, cond))
        if not choices:
            raise _End("violation", f"the jump at {self._current:#x} has no target inside the unit")
        if len(choices) > MAX_TABLE_TARGETS:
            return
        for v, cond in choices[1:]:
            self._queue.append(path.fork(cond, self.blob.base + v))
        v, cond = choices[0]
        if not cond.is_true():
            path.pc.append(cond)
        raise _Jump(self.blob.base + v)

    def _jumpkind_end(self, path: _Path, jumpkind: str, target: int | None) -> None:
        where = self._current
        if jumpkind.startswith("Ijk_Sys"):
            msg = f"the instruction at {where:#x} makes a system call"
            self._violate(path, "policy", where, msg, claripy.true())
            raise _End("violation", msg)
        if jumpkind == "Ijk_NoDecode":
            # What VEX cannot decode is judged on its bytes like any other instruction: forbidden
            # ones refute even though VEX never lifted them.
            at = target if target is not None else path.addr
            self._current = at
            self._judge(path, at, None)
            insn = isa.decode_insn(self.blob, at)
            raise _End("unsupported-instruction",
                       f"{insn.text() if insn else '?'} at {at:#x} is not modelled by the VEX lifter")
        if jumpkind.startswith("Ijk_Sig"):
            msg = f"the instruction at {where:#x} traps ({jumpkind[4:]})"
            self._violate(path, "policy", where, msg, claripy.true())
            raise _End("violation", msg)
        raise _End("unsupported-instruction", f"the instruction at {where:#x} ends in VEX jump kind "
                   f"{jumpkind}, which is not modelled")

    def _return(self, path: _Path, target: BV) -> None:
        st, regs = self.state, path.regs
        if st.code is not None and names.CODE in target.variables:
            # a return to a return address a call of the unit left: it goes on there (a jump
            # through the stack); one that does not reduce to `$code + offset` is checked below
            self._table_jump(path, target)
        checks: list[tuple[str, claripy.ast.Bool]] = [
            ("returns to an address other than the caller's return address", target != st.ret_addr),
        ]
        sp_now = regs.get(self._sp_off, 8)
        checks.append((f"leaves the stack pointer unbalanced (expected entry {self.abi.sp} "
                       f"+ {self.abi.ret_pops})", sp_now != st.sp0 + self.abi.ret_pops))
        for name in self.abi.callee_saved + self.abi.untouched:
            off = st.arch.get_register_offset(name)
            checks.append((f"does not restore callee-saved register {name}",
                           regs.get(off, 8) != st.entry_values[name]))
        vbits = self.abi.vector_saved_bits
        for name in self.abi.vector_callee_saved:
            off = st.arch.get_register_offset(name)
            checks.append((f"does not restore the low {vbits} bits of callee-saved register {name}",
                           regs.get(off, vbits // 8) != claripy.Extract(vbits - 1, 0, st.entry_values[name])))
        if self.blob.arch == "x86_64":
            off = st.arch.get_register_offset("dflag")
            checks.append(("returns with the direction flag set", regs.get(off, 8) != 1))
        checks += self._fp_control_changed(path)
        for msg, cond in checks:
            if not cond.is_false():
                self._violate(path, "frame", self._current, f"the return at {self._current:#x} {msg}", cond)
        ok = claripy.And(*[claripy.Not(c) for _, c in checks])
        if not ok.is_true():
            path.pc.append(ok)
        raise _End("returned")

    def _fp_control_changed(self, path: _Path) -> list[tuple[str, claripy.ast.Bool]]:
        """The FP control state the ABI makes callee-saved (arch.FP_CALLEE_SAVED)."""
        ctx, entry = self.ctx(path), self.state.entry_values
        return [(f"changes the caller's {_FP_CONTROL_WHAT[name]}", (ctx.reg(name) & mask) != (entry[name] & mask))
                for name, mask in FP_CALLEE_SAVED[self.blob.arch].items()]

    # --- memory ----------------------------------------------------------------------------

    def load(self, path: _Path, addr: BV, n: int) -> BV:
        if self._fixup is not None:
            addr = self.relocated.address(self._fixup, addr)
        self._check_alignment(path, addr, n)
        placed = self._place(path, addr, n, write=False)
        region, off, cands = placed
        if cands is None:
            return path.mem.read(region, off, n)
        ro = names.rodata_index(region)
        if ro is not None and self.blob.rodata[ro].links:
            cands = self._stride(path, off, cands)
        return path.mem.read_symbolic(region, off, n, cands)

    def _stride(self, path: _Path, off: BV, cands: range) -> range:
        """The offsets a table index can take, when the path keeps it a multiple of 2, 4 or 8: an
        if-then-else over only those keeps a jump's targets easy to enumerate (exact: the others
        cannot occur on this path)."""
        for k in (8, 4, 2):
            if self._model(path, claripy.Extract(k.bit_length() - 2, 0, off) != 0) is None:
                return range(cands.start, cands.stop, k)
        return cands

    def store(self, path: _Path, addr: BV, data: BV) -> None:
        if self.state.code is not None and path.insn is not None and path.insn[1].mnemonic == "call" \
                and data.concrete and data.size() == 64:
            # the return address a call pushes is the code's own address: `$code + offset`
            data = self.state.code + (data.concrete_value - self.blob.base)
        n = data.size() // 8
        if self._fixup is not None:
            addr = self.relocated.address(self._fixup, addr)
        self._check_alignment(path, addr, n)
        region, off, cands = self._place(path, addr, n, write=True)
        if cands is None:
            path.mem.write(region, off, data)
        else:
            path.mem.write_symbolic(region, off, data, cands)

    def reg_slot(self, name: str) -> tuple[int, int]:
        """(guest-state offset, bytes) of a register, or of nverify's own FP control state."""
        if name in entry_mod.PSEUDO:
            return entry_mod.PSEUDO[name]
        off, size = self.state.arch.registers[name]
        return off, size

    def _check_alignment(self, path: _Path, addr: BV, n: int) -> None:
        """Aligned SSE/AVX forms fault (#GP) on a misaligned operand: at least the form's alignment,
        and an aligned move's whole operand (vmovdqa ymm: 32 bytes). VEX does not check them all."""
        form = path.insn[0] if path.insn is not None else None
        if form is None or not form.align:
            return
        align = max(form.align, n)
        ok = claripy.Extract(align.bit_length() - 2, 0, addr) == 0
        self._assume(path, ok, "memory-safety",
                     self.insn_text(path, f"faults (#GP): its memory operand is not {align}-byte aligned"))

    def _place(self, path: _Path, addr: BV, n: int, *, write: bool):
        what = "write" if write else "read"
        split = split_base(addr, self.state.bases)
        if split is None:
            return self._unplaced(path, addr, n, what)
        region, off = split
        if region == STACK:
            return self._place_stack(path, addr, off, n, what)
        r = self.state.regions[region]
        if write and not r.writable:
            what = f"read-only data {self._shown(region)}" if region not in self.state.arrays_by_name \
                else f"const array {region}"
            msg = f"the instruction at {self._current:#x} writes to {what}"
            self._violate(path, "memory-safety", self._current, msg, claripy.true())
            raise _End("violation", msg)
        inside = claripy.ULE(off, r.size - n) if r.size >= n else claripy.false()
        if r.length is not None and not r.length.concrete:   # T p[n]: only n elements exist
            inside = claripy.And(inside, claripy.ULE(off + n, r.length))
            if off.concrete and r.size >= off.concrete_value + n:
                msg = (f"the instruction at {self._current:#x} may {what} {n} bytes past the end of {region} "
                       f"(its {self.state.arrays_by_name[region].count} elements)")
                self._assume(path, inside, "memory-safety", msg)
                return region, off.concrete_value, None
        if off.concrete:
            if inside.is_true():
                return region, off.concrete_value, None
            msg = (f"the instruction at {self._current:#x} {what}s {n} bytes at {region} + "
                   f"{_signed(off.concrete_value)}, outside {self._named(region)} ({r.size} bytes)")
            self._violate(path, "memory-safety", self._current, msg, claripy.true())
            raise _End("violation", msg)
        msg = (f"the instruction at {self._current:#x} may {what} {n} bytes outside {self._named(region)} "
               f"({r.size} bytes)")
        self._assume(path, inside, "memory-safety", msg)
        return region, off, range(0, r.size - n + 1)

    def _place_stack(self, path: _Path, addr: BV, off: BV, n: int, what: str):
        sp_off = self._stack_pointer_offset(path)
        if off.concrete:
            o = _signed(off.concrete_value)
            if o < -entry_mod.STACK_MAX:
                raise _End("unplaceable-access", f"the instruction at {self._current:#x} {what}s "
                           f"{-o} bytes below the entry stack pointer; only {entry_mod.STACK_MAX} are modelled")
            path.pending.append((off, n, sp_off, self._current))
            return STACK, o, None
        lo, hi = sp_off - self.abi.red_zone, self.state.stack_hi
        inside = claripy.And(claripy.SGE(off, lo), claripy.SLE(off, hi - n))
        msg = f"the instruction at {self._current:#x} may {what} outside its stack frame"
        self._assume(path, inside, "memory-safety", msg)
        cands = range(lo, hi - n + 1)
        if len(cands) > MAX_SYMBOLIC_OFFSETS:
            raise _End("unplaceable-access", f"the instruction at {self._current:#x} {what}s the stack "
                       f"at a data-dependent offset over {len(cands)} bytes")
        return STACK, off, cands

    def _stack_pointer_offset(self, path: _Path) -> int:
        sp = path.regs.get(self._sp_off, 8)
        split = split_base(sp, self.state.bases)
        if split is None or split[0] != STACK or not split[1].concrete:
            raise _End("unplaceable-access", f"at {self._current:#x} the stack pointer depends on data; "
                       "frames of data-dependent size are not modelled")
        return _signed(split[1].concrete_value)

    def _flush_stack_checks(self, path: _Path) -> None:
        """Check stack accesses of the finished instruction against its frame.

        An access is inside the frame when it lies at or above the stack pointer as it was either
        at the access or at the end of the instruction (minus the red zone): VEX moves the
        stack pointer before the store of a push or `stp …]!`, and after the load of a pop.
        """
        if not path.pending:
            return
        sp_end = self._stack_pointer_offset(path)
        pending, path.pending = path.pending, []
        for off, n, sp_at, where in pending:
            o = _signed(off.concrete_value)
            lo = min(sp_at, sp_end) - self.abi.red_zone
            if not (lo <= o and o + n <= self.state.stack_hi):
                side = "below the stack pointer" if o < lo else "above its own frame (the caller's stack)"
                msg = (f"the instruction at {where:#x} touches {n} bytes at entry {self.abi.sp} "
                       f"{o:+d}, {side}")
                if self.abi.red_zone and o < lo:
                    msg += f" and its {self.abi.red_zone}-byte red zone"
                self._violate(path, "memory-safety", where, msg, claripy.true())
                raise _End("violation", msg)

    def _unplaced(self, path: _Path, addr: BV, n: int, what: str):
        inside = []
        for r in self.state.regions.values():
            if r.name == STACK:
                sp_off = self._stack_pointer_offset(path)
                lo = r.base + (sp_off - self.abi.red_zone)
                inside.append(claripy.And(claripy.UGE(addr, lo),
                                          claripy.ULE(addr + n, r.base + self.state.stack_hi)))
            else:
                size = r.length if r.length is not None else claripy.BVV(r.size, 64)
                inside.append(claripy.And(claripy.UGE(addr, r.base), claripy.ULE(addr + n, r.base + size)))
        msg = f"the instruction at {self._current:#x} {what}s {n} bytes at an address outside every array " \
              "and its stack frame"
        self._violate(path, "memory-safety", self._current, msg, claripy.Not(claripy.Or(*inside)))
        raise _End("unplaceable-access", f"the instruction at {self._current:#x} {what}s memory at an "
                   "address that is not an array or stack address plus an offset")

    def _assume(self, path: _Path, ok, kind: str, msg: str) -> None:
        """Record a `kind` violation where `ok` fails, then follow the path only where it holds."""
        if ok.is_true():
            return
        self._violate(path, kind, self._current, msg, claripy.Not(ok))
        path.pc.append(ok)

    # --- bookkeeping ---------------------------------------------------------------------

    def _feasible(self, path: _Path, cond) -> bool:
        return self._model(path, cond) is not None

    def _model(self, path: _Path, cond):
        """None when pc ∧ cond is infeasible; otherwise a model of it, or True if undecided."""
        assert self._sat is not None
        try:
            return self._sat.satisfiable(path.pc, cond, path.witness, path.witness_len)
        except claripy.ClaripyError:
            return True   # undecided: keep the path (over-approximating is sound)

    def _violate(self, path: _Path, kind: str, addr: int, message: str, cond) -> None:
        full = claripy.And(*path.pc, cond) if path.pc else cond
        self.violations.append(Violation(kind=kind, key=f"{kind}@{addr:#x}", addr=addr, message=message,
                                         cond=smt_bridge.to_text(full), path=len(self.paths),
                                         trace=tuple(path.trace)))
        self._note_symbols([full])

    def _finish(self, path: _Path, status: str, message: str) -> None:
        if status == "infeasible":
            return
        outputs: dict[str, str] = {}
        if status == "returned":
            outputs = self._outputs(path)
        pc = claripy.And(*path.pc) if path.pc else claripy.true()
        self._note_symbols([pc])
        self.paths.append(PathResult(index=len(self.paths), status=status, pc=smt_bridge.to_text(pc),
                                     outputs=outputs, trace=tuple(path.trace), addr=self._current,
                                     message=message))

    def _outputs(self, path: _Path) -> dict[str, str]:
        sig, st = self.spec.signature, self.state
        vals: dict[str, BV] = {}
        for a in st.arrays:
            if a.const:
                continue
            w = a.elem_bits // 8
            for i in range(a.length):
                vals[f"{a.name}.{i}.out"] = path.mem.read(a.name, i * w, w)
        if sig.ret is not None:
            off = st.arch.get_register_offset(self.abi.ret_reg)
            vals["ret"] = claripy.Extract(sig.ret.bits - 1, 0, path.regs.get(off, 8))
        self._note_symbols(list(vals.values()))
        return {k: smt_bridge.to_text(v) for k, v in vals.items()}

    def _note_symbols(self, asts) -> None:
        self._symbols.update(smt_bridge.widths(asts))


def _path_pre(spec: Spec) -> list:
    """`pre` as Z3 terms for pruning infeasible paths: the very terms `smt` parses from the spec's
    text for the obligations and the evaluators (one meaning of the spec; a second translation,
    through claripy, once read `bvsmod` as a remainder and pruned a feasible branch). Conjuncts
    over the spec's arrays or with quantifiers are left out, which keeps the solver fast: pruning
    less only explores more, which is sound. The bounds of every length n are added back: they
    follow from pre (spec.lengths)."""
    import z3

    from . import smt

    parts = [c for c in _pre_conjuncts(spec) if _scalar(c, spec.names)]
    for arr, largest in spec.lengths.items():
        p = spec.signature.param(arr)
        n = spec.signature.param(str(p.length)) if p else None
        if n is not None:
            parts.append(z3.ULE(smt.declarations({n.name: n.bits})[n.name], largest))
    return parts


def _pre_conjuncts(spec: Spec) -> list:
    if spec.pre == "true":
        return []
    from . import smt
    return smt.conjuncts(smt.parse_asserts(f"(assert {spec.pre})", spec.names)[0])


def _scalar(f, sorts: dict[str, int]) -> bool:
    """No quantifier and no array name in `f` (`sorts`: the spec's names and their smt.Sort)."""
    import z3

    from . import smt

    if any(z3.is_quantifier(t) for t in smt.subterms(f)):
        return False
    return not any(smt.is_array(sorts.get(n, 0)) for n in smt.free_names(f))


# VEX's flag helpers, which its optimiser may specialise into plain operations (its own C code,
# guest_*_spechelper): pure functions of the flag thunk.
_PURE = frozenset({"amd64g_calculate_condition", "amd64g_calculate_rflags_all", "amd64g_calculate_rflags_c",
                   "arm64g_calculate_condition", "arm64g_calculate_flags_nzcv", "arm64g_calculate_flag_n",
                   "arm64g_calculate_flag_z", "arm64g_calculate_flag_c", "arm64g_calculate_flag_v"})
# VEX operations whose evaluation nverify turns into a fault check (symexec: divide_overflow).
_CHECKED_OPS = frozenset(_X86_DIVMOD) | _A64_DIV


def _effects(irsb: pyvex.IRSB, sp: int) -> tuple:
    """Everything of a block that can fault, leave it, touch memory or change state outside the
    guest registers, instruction by instruction: loads, stores, exits, helper calls, atomics,
    dirty calls, the checked divisions, where the block ends, and every write of the stack
    pointer (the executor reads it between instructions to check stack accesses; the optimiser
    drops a write that a later one overwrites). Two lifts of one block with equal effects differ
    only in how pure values are computed."""
    out: list = [(irsb.jumpkind, irsb.size, irsb.instructions)]
    for st in irsb.statements:
        if isinstance(st, pyvex.stmt.IMark):
            out.append(("insn", st.addr, st.len))
            continue
        if isinstance(st, pyvex.stmt.Put) and st.offset == sp:
            out.append(("put-sp",))
        if not isinstance(st, (pyvex.stmt.WrTmp, pyvex.stmt.Put, pyvex.stmt.NoOp, pyvex.stmt.AbiHint)):
            out.append((type(st).__name__, getattr(st, "jumpkind", None), str(getattr(st, "dst", ""))))
        for e in st.expressions:
            if isinstance(e, pyvex.expr.Load):
                out.append(("load", e.ty))
            elif isinstance(e, pyvex.expr.GetI) or isinstance(e, pyvex.expr.CCall) and e.cee.name not in _PURE:
                out.append((type(e).__name__, getattr(getattr(e, "cee", None), "name", "")))
            elif isinstance(e, (pyvex.expr.Unop, pyvex.expr.Binop, pyvex.expr.Triop, pyvex.expr.Qop)) \
                    and e.op in _CHECKED_OPS:
                out.append(("op", e.op))
    return tuple(out)


def _witness(model):
    return None if model is True else model


def _exclusive(a: list, b: list) -> tuple[list, claripy.ast.Bool] | None:
    """(shared prefix, the condition for `a` beyond it) when the two path conditions exclude each
    other by construction: after a shared prefix, one continues with c and the other with not c
    (a fork). Then no input is on both paths, and an ite on that condition selects exactly the
    path an input takes. Paths that do not diverge like that (say, one execution at two
    different times) are never merged."""
    i = 0
    n = min(len(a), len(b))
    while i < n and a[i] is b[i]:
        i += 1
    if i == n:
        return None
    if not (b[i] is claripy.Not(a[i]) or a[i] is claripy.Not(b[i])):
        return None
    rest = a[i:]
    return a[:i], (rest[0] if len(rest) == 1 else claripy.And(*rest))


def _mergeable(a: _Path, b: _Path, flags: frozenset[int]) -> bool:
    """Merge only states with one concrete skeleton: every register and memory byte that is
    concrete on one side is the same concrete value on the other (the flag thunk excepted, whose
    if-then-else angr's flag helpers evaluate exactly), and no stack check is pending. Loop
    counters, addresses and the stack pointer then stay concrete after the merge; states that
    differ there (different loop iterations, different frames) are explored separately."""
    if a.pending or b.pending or a.insn is not None or b.insn is not None:
        return False
    for off in a.regs.slots.keys() | b.regs.slots.keys():
        if off in flags:
            continue
        x, y = a.regs.slots.get(off), b.regs.slots.get(off)
        if x is None or y is None:
            if (x if x is not None else y).concrete:   # type: ignore[union-attr]
                return False
            continue
        if x is not y and (x.concrete or y.concrete or x.size() != y.size()):
            return False
    for region in a.mem.bytes.keys() | b.mem.bytes.keys():
        ma, mb = a.mem.bytes.get(region, {}), b.mem.bytes.get(region, {})
        for off in ma.keys() | mb.keys():
            x, y = a.mem.byte(region, off), b.mem.byte(region, off)
            if x is not y and (x.concrete or y.concrete):
                return False
    return True


def _merge(a: _Path, b: _Path, prefix: list, guard: claripy.ast.Bool) -> _Path:
    """The state that is `a` where `guard` holds and `b` elsewhere (the two are exclusive)."""
    regs = RegisterFile()
    layout = sorted({*a.regs.slots, *b.regs.slots})
    for off in layout:
        x, y = a.regs.slots.get(off), b.regs.slots.get(off)
        if x is not None and y is not None and x.size() == y.size():
            regs.slots[off] = x if x is y else claripy.If(guard, x, y)
    for off in layout:   # slots laid out differently on the two sides: byte by byte
        if off in regs.slots:
            continue
        for val in (a.regs.slots.get(off), b.regs.slots.get(off)):
            if val is None:
                continue
            for k in range(val.size() // 8):
                if any(s <= off + k < s + v.size() // 8 for s, v in regs.slots.items()):
                    continue
                x, y = a.regs.get(off + k, 1), b.regs.get(off + k, 1)
                regs.slots[off + k] = x if x is y else claripy.If(guard, x, y)
    mem = a.mem.copy()
    for region in a.mem.bytes.keys() | b.mem.bytes.keys():
        m = mem.bytes.setdefault(region, {})
        for off in a.mem.bytes.get(region, {}).keys() | b.mem.bytes.get(region, {}).keys():
            x, y = a.mem.byte(region, off), b.mem.byte(region, off)
            m[off] = x if x is y else claripy.If(guard, x, y)
    rest_b = b.pc[len(prefix):]
    either = claripy.Or(guard, rest_b[0] if len(rest_b) == 1 else claripy.And(*rest_b))
    pc = prefix + ([] if either.is_true() else [either])
    visits = {k: max(a.visits.get(k, 0), b.visits.get(k, 0)) for k in a.visits.keys() | b.visits.keys()}
    return _Path(a.addr, regs, mem, pc, visits, a.trace if len(a.trace) >= len(b.trace) else b.trace, [])


def _element_byte(elems: list[BV], width: int, off: int) -> BV:
    """Byte `off` of an array whose entry elements are the spec's symbols p.0, p.1, …"""
    return claripy.Extract((off % width) * 8 + 7, (off % width) * 8, elems[off // width])


def _windows(blob: Blob, code: BV | None) -> dict[str, tuple[int, int]]:
    """Where a concrete run may place each read-only region: near its placeholder, and a region
    with the same bytes as an earlier one in the earlier one's window, so that the two may also
    be one (entry.build allows it); `$code` where the run places the code, its own address."""
    first: dict[bytes, tuple[int, int]] = {}
    out = {names.rodata(n): first.setdefault(ro.data, ro.window()) for n, ro in enumerate(blob.rodata)}
    if code is not None:
        from .oracle.concrete import run_address

        run = run_address(blob)     # co-simulation and replay may move the code below where it runs
        out[names.CODE] = (max(run - CODE_WINDOW, 0x10000), run)
    return out


def _data_byte(data: bytes, linked: dict[int, BV], off: int) -> BV:
    return linked[off] if off in linked else claripy.BVV(data[off], 8)


def _signed(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def explore(blob: Blob, spec: Spec, abi: Abi, **kw) -> Exploration:
    return Explorer(blob, spec, abi, **kw).explore()
