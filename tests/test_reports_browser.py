"""Reports in a real browser: headless Chromium loads the HTML without console errors, the
verdict banner and the control-flow SVG render (checked on a screenshot's pixels and in the
printed PDF's text, via poppler's pdftotext)."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from verifier.cli import main

from .build import asm_file
from .kernels import sort3


@pytest.fixture(scope="module")
def browser():
    from reports import chromium

    exe = chromium()
    if exe is None or shutil.which("pdftotext") is None:
        if os.environ.get("CI"):
            pytest.fail("chromium and poppler-utils are not installed: .ci/run installs them")
        pytest.skip("chromium / pdftotext not installed (.ci/run installs them)")
    return exe


def _png_pixels(path: Path) -> tuple[int, int, list[bytes]]:
    """Decode an 8-bit RGB/RGBA, non-interlaced PNG (what Chromium writes): width, height, rows."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    w = h = channels = 0
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and interlace == 0 and color in (2, 6)
            channels = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw = zlib.decompress(idat)
    stride = w * channels
    rows, prev = [], bytearray(stride)
    for y in range(h):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - channels] if x >= channels else 0
            b, c = prev[x], prev[x - channels] if x >= channels else 0
            if f == 1:
                line[x] = (line[x] + a) & 0xFF
            elif f == 2:
                line[x] = (line[x] + b) & 0xFF
            elif f == 3:
                line[x] = (line[x] + (a + b) // 2) & 0xFF
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        rows.append(bytes(line) if channels == 3 else bytes(v for i in range(0, stride, 4) for v in line[i:i + 3]))
        prev = line
    return w, h, rows


@pytest.mark.parametrize("arch,case", [("x86_64", "refuted"), ("aarch64", "proven")])
def test_report_renders_in_chromium(browser, tmp_path, arch, case):
    tail = {"x86_64": "mov dword ptr [rdi+12], edx\n ret", "aarch64": "str w3, [x0, #12]\n ret"}[arch]
    blob = asm_file(tmp_path, arch, sort3(arch, tail) if case == "refuted" else sort3(arch))
    page, pdf = tmp_path / "r.html", tmp_path / "r.pdf"
    main(["prove", str(blob), "--spec", "sort3", "--arch", arch, "--report", str(page), "-q"])
    main(["prove", str(blob), "--spec", "sort3", "--arch", arch, "--report", str(pdf), "-q"])

    # 1. loads without console errors, and the DOM has the banner and the SVG
    run = subprocess.run([browser, "--headless", "--disable-gpu", "--no-sandbox", "--enable-logging=stderr",
                          "--v=0", f"--user-data-dir={tmp_path}/profile", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120)
    dom = run.stdout
    assert f'class="banner {case}"' in dom and "<svg" in dom and "</html>" in dom
    console = [ln for ln in run.stderr.splitlines() if "CONSOLE" in ln or "Failed to load resource" in ln]
    assert not console, console

    # 2. a screenshot: mostly not blank, with the banner's colour at the top
    shot = tmp_path / "r.png"
    subprocess.run([browser, "--headless", "--disable-gpu", "--no-sandbox", "--hide-scrollbars",
                    f"--user-data-dir={tmp_path}/profile2", "--window-size=1000,1400", f"--screenshot={shot}",
                    page.as_uri()], capture_output=True, timeout=120, check=False)
    w, h, rows = _png_pixels(shot)
    ink = sum(1 for r in rows for i in range(0, len(r), 3) if r[i:i + 3] != b"\xff\xff\xff")
    assert ink > w * h * 0.05, f"only {ink} of {w * h} pixels are not white"
    banner = {"refuted": (0xCF, 0x22, 0x2E), "proven": (0x1A, 0x7F, 0x37)}[case]
    top = rows[: h // 6]
    hits = sum(1 for r in top for i in range(0, len(r), 3) if all(abs(r[i + k] - banner[k]) < 12 for k in range(3)))
    assert hits > w * 20, f"the {case} banner colour is missing from the top of the page ({hits} pixels)"

    # 3. the PDF holds the text a reviewer needs, the SVG's instructions included
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout
    assert case.upper() in text and "What was" in text and "Assumptions" in text
    first = {"x86_64": "mov eax, dword ptr [rdi]", "aarch64": "ldp w1, w2, [x0]"}[arch]
    assert text.count(first) >= 2, "the instruction should appear in the disassembly and in the CFG picture"
    if case == "refuted":
        assert "Counterexample" in text and "0x40002e" in text


def test_pdf_without_chromium_is_a_clear_error(tmp_path, capsys, monkeypatch):
    import reports

    monkeypatch.setattr(reports, "CHROMIUM", ("no-such-browser",))
    blob = asm_file(tmp_path, "x86_64", sort3("x86_64"))
    code = main(["prove", str(blob), "--spec", "sort3", "--arch", "x86_64", "--report", str(tmp_path / "r.pdf")])
    err = capsys.readouterr().err
    assert code == 2 and "headless Chromium" in err and "apt-get install chromium" in err
    assert not (tmp_path / "r.pdf").exists()
