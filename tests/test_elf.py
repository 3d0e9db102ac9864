"""verifier/elf.py reads relocatable ELF objects without LIEF: on every kind of object the suite
builds (gcc and clang at several levels, both ISAs, code needing relocations, nverify's own
emitted .o), it gives exactly what LIEF's reading gives, for every symbol, errors included."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

from verifier import blob as blob_mod
from verifier import elf
from verifier.emit import elf_object
from verifier.errors import NVerifyError

from .build import ARCHES, assemble, compile_c, damaged, llvm_tool

C_DIR = Path(__file__).parent / "c"
SOURCE = (C_DIR / "library.c").read_text() + "\n" + (C_DIR / "loops.c").read_text()
RELOCS = ("#include <stdint.h>\nextern int g; extern void h(void);\nint useg(int x) { return x + g; }\n"
          "void callh(int32_t p[3]) { h(); p[0] = 0; }\nint plain(int x) { return x * 3; }\n"
          "static int tab[4] = {1, 2, 3, 4};\nint look(int i) { return tab[i & 3]; }\n")


def _objects(tmp: Path, arch: str) -> list[Path]:
    out = [compile_c(tmp, arch, SOURCE, opt, "lib") for opt in ("O0", "O2", "O3", "Os")]
    out.append(compile_c(tmp, arch, RELOCS, "O2", "relocs"))
    clang = llvm_tool("clang")
    if clang:
        target = {"x86_64": "x86_64-linux-gnu", "aarch64": "aarch64-linux-gnu"}[arch]
        for name, src in (("clanglib", SOURCE), ("clangrel", RELOCS)):
            (tmp / f"{name}.c").write_text(src)
            o = tmp / f"{name}_{arch}.o"
            subprocess.run([clang, f"--target={target}", "-O2", "-ffreestanding", "-fno-pic", "-c",
                            str(tmp / f"{name}.c"), "-o", str(o)], check=True, capture_output=True)
            out.append(o)
    emitted = tmp / f"emitted_{arch}.o"
    emitted.write_bytes(elf_object(assemble(arch, "ret\n"), "fn", arch))
    out.append(emitted)
    return out


def _both(path: Path, symbol: str, monkeypatch) -> tuple[object, object]:
    """load() as verifier/elf.py reads the file, and as LIEF does."""
    def one():
        try:
            b = blob_mod.load(path, symbol=symbol)
            return (b.code, b.base, b.arch, b.entry, b.section, b.offset, b.extent_note)
        except NVerifyError as e:
            return (type(e).__name__, str(e))
    fast = one()
    with monkeypatch.context() as m:
        m.setattr(elf, "parse", lambda data: None)
        slow = one()
    return fast, slow


@pytest.mark.parametrize("arch", ARCHES)
def test_object_reader_agrees_with_lief_on_every_symbol(tmp_path, monkeypatch, arch):
    import lief

    compared = 0
    for obj in _objects(tmp_path, arch):
        data = obj.read_bytes()
        ours = elf.parse(data)
        assert ours is not None and ours.arch == arch, obj      # the fast path is the one taken
        theirs = lief.ELF.parse(list(data))
        assert [s.name for s in ours.sections] == [s.name for s in theirs.sections], obj
        functions = {s.name for s in theirs.symbols if s.is_function}
        assert functions == {s.name for s in ours.symbols if s.is_function}, obj
        assert len(ours.relocations) == len(list(theirs.relocations)), obj
        for name in sorted(functions) + ["nosuch"]:
            fast, slow = _both(obj, name, monkeypatch)
            assert fast == slow, (obj, name)
            compared += 1
    assert compared > 40


def test_relocations_are_found_by_the_fast_reader(tmp_path):
    obj = compile_c(tmp_path, "x86_64", RELOCS, "O2", "relocs")
    for fn, target in (("useg", "g"), ("callh", "h")):
        with pytest.raises(NVerifyError, match=rf"needs a relocation .*\(to {target}\)"):
            blob_mod.load(obj, symbol=fn)
    assert blob_mod.load(obj, symbol="plain").code


@pytest.mark.parametrize("arch", ARCHES)
def test_damaged_objects_read_or_fail_cleanly(tmp_path, arch):
    """Truncated and bit-flipped objects: a blob or one input error, whichever reader ends up
    reading them (the fast one hands what it cannot read to LIEF)."""
    rng = random.Random(arch)
    data = compile_c(tmp_path, arch, SOURCE, "O2", "lib").read_bytes()
    for i, copy in damaged(data, rng, 60):
        bad = tmp_path / f"bad{i}.o"
        bad.write_bytes(copy)
        try:
            blob_mod.load(bad, symbol="clamp")
        except NVerifyError:
            pass


def test_loading_an_object_does_not_import_lief(tmp_path):
    obj = compile_c(tmp_path, "x86_64", SOURCE, "O2", "lib")
    code = ("import sys; from verifier.blob import load; b = load(sys.argv[1], symbol='clamp'); "
            "print(len(b.code), 'lief' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(obj)], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).parent.parent).stdout.split()
    assert int(out[0]) > 0 and out[1] == "False"
