"""Mach-O (thin and fat) and PE/COFF objects and images on both ISAs, built by clang and lld at
test time from the library's C: found by symbol, given the format's ABI, proven; what needs a
relocation, a missing slice or a conflicting --arch is one clear error."""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

import pytest

from verifier import prove
from verifier.blob import load
from verifier.cli import main
from verifier.pipeline import Options

from .build import ARCHES, clang_object, damaged, fat_macho, link_image, llvm_tool

pytestmark = pytest.mark.usefixtures("llvm")

C_DIR = Path(__file__).parent / "c"
SOURCE = (C_DIR / "library.c").read_text() + "\n" + (C_DIR / "loops.c").read_text()
FORMATS = ("macho", "pe")
DEFAULT_ABI = {("macho", "x86_64"): "sysv", ("macho", "aarch64"): "apple",
               ("pe", "x86_64"): "win64", ("pe", "aarch64"): "aapcs64"}
IMAGE_EXPORTS = ["sort3", "clamp", "strnlen", "sum"]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(fmt, arch) -> (object, image), each compiled once for the module."""
    out = {}
    for fmt in FORMATS:
        for arch in ARCHES:
            d = tmp_path_factory.mktemp(f"{fmt}_{arch}")
            obj = clang_object(d, fmt, arch, SOURCE)
            out[fmt, arch] = obj, link_image(d, fmt, arch, obj, IMAGE_EXPORTS)
    return out


def _check(r: dict, fmt: str, arch: str) -> None:
    assert r["verdict"] == "proven", r
    assert r["blob"]["arch"] == arch and r["abi"] == DEFAULT_ABI[fmt, arch]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("fn", ["sort3", "p20", "sum", "copy"])
def test_objects_prove(built, fmt, arch, fn):
    obj, _ = built[fmt, arch]
    r = prove(str(obj), fn).to_json()
    _check(r, fmt, arch)
    assert r["blob"]["format"] == ("macho" if fmt == "macho" else "coff")
    assert r["blob"]["symbol"] == (f"_{fn}" if fmt == "macho" else fn)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("fn", ["sort3", "strnlen"])
def test_images_prove(built, fmt, arch, fn):
    _, image = built[fmt, arch]
    r = prove(str(image), fn).to_json()
    _check(r, fmt, arch)
    assert r["blob"]["format"] == fmt


def test_function_extents_do_not_overlap(built):
    """No size in the symbol table: each extent runs to the next symbol, never into a neighbour."""
    names = ["clamp", "sort3", "sort4", "sum", "copy", "strnlen"]
    for (fmt, arch), (obj, image) in built.items():
        for path, exported in ((obj, names), (image, IMAGE_EXPORTS)):
            spans = sorted((b.base, b.base + b.size) for b in (load(str(path), symbol=n) for n in exported))
            assert all(hi <= lo2 for (_, hi), (lo2, _) in zip(spans, spans[1:], strict=False)), \
                (fmt, arch, path.name, spans)


@pytest.mark.parametrize("arch", ARCHES)
def test_fat_macho_slice_is_chosen_by_arch(built, tmp_path, capsys, arch):
    fat = fat_macho(tmp_path, [built["macho", a][0] for a in ARCHES])
    r = prove(str(fat), "sort3", Options(arch=arch)).to_json()
    assert r["verdict"] == "proven" and r["blob"]["arch"] == arch
    assert main(["prove", str(fat), "--spec", "sort3", "-q"]) == 2
    assert "fat Mach-O with slices x86_64, arm64: choose one with --arch" in capsys.readouterr().err


def test_fat_macho_without_the_slice(built, tmp_path, capsys):
    i386 = tmp_path / "i386.o"
    subprocess.run([llvm_tool("clang"), "--target=i386-apple-macos10.13", "-c", "-x", "c", "-", "-o", str(i386)],
                   input=b"int clamp(int x) { return x; }\n", check=True, capture_output=True)
    fat = fat_macho(tmp_path, [built["macho", "x86_64"][0], i386])
    assert main(["prove", str(fat), "--spec", "sort3", "--arch", "aarch64", "-q"]) == 2
    assert "the fat Mach-O has no aarch64 slice (it has x86_64, x86)" in capsys.readouterr().err
    assert prove(str(fat), "sort3", Options(arch="x86_64")).verdict.value == 0


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("arch", ARCHES)
def test_code_needing_a_relocation_is_unsupported(tmp_path, capsys, fmt, arch):
    src = "extern int g;\nint useg(int x) { return x + g; }\nint other(int x) { return x; }\n"
    obj = clang_object(tmp_path, fmt, arch, src, name="useg")
    spec = tmp_path / "useg.smt"
    spec.write_text('(set-info :nverify-signature "int32_t useg(int32_t x)")\n(define-fun post () Bool true)\n')
    assert main(["prove", str(obj), "--spec", str(spec), "-q"]) == 2
    err = capsys.readouterr().err
    assert "needs a relocation" in err and ("(to _g)" in err or "(to g)" in err), err


@pytest.mark.parametrize("fmt", FORMATS)
def test_wrong_arch_and_missing_symbol_are_input_errors(built, capsys, fmt):
    obj, image = built[fmt, "x86_64"]
    header = {"macho": "Mach-O", "pe": "COFF"}[fmt]
    assert main(["prove", str(obj), "--spec", "sort3", "--arch", "aarch64", "-q"]) == 2
    assert f"conflicts with the {header} header" in capsys.readouterr().err
    assert main(["prove", str(image), "--spec", "sort3", "--symbol", "nosuch", "-q"]) == 2
    err = capsys.readouterr().err
    assert "no function symbol 'nosuch'" in err and "clamp" in err


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("arch", ARCHES)
def test_damaged_files_never_crash(built, tmp_path, capsys, fmt, arch):
    """Truncated or bit-flipped objects and images: a verdict or one clear error, never a traceback."""
    rng = random.Random(f"{fmt}{arch}")
    for path in built[fmt, arch]:
        data = path.read_bytes()
        for i, copy in damaged(data, rng, 12):
            bad = tmp_path / f"bad{i}{path.suffix}"
            bad.write_bytes(copy)
            code = main(["prove", str(bad), "--spec", "clamp", "--arch", arch, "-q", "--timeout", "5"])
            err = capsys.readouterr().err
            assert code in (0, 1, 2, 3) and "Traceback" not in err and "internal error" not in err, err
