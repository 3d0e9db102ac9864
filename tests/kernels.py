"""Reference kernels in assembly, one per ISA, that the soundness tests mutate and booby-trap."""

from pathlib import Path

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "sort3_x86_64.s"


def _example_body() -> str:
    """The shipped example's instructions, without its comments and final return."""
    lines = [ln for ln in EXAMPLE.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    assert lines[-1].strip() == "ret"
    return "\n".join(lines[:-1]) + "\n"


SORT3 = {
    "x86_64": _example_body(),
    "aarch64": """
        ldp w1, w2, [x0]
        ldr w3, [x0, #8]
        cmp w1, w2
        csel w4, w1, w2, gt
        csel w1, w2, w1, gt
        mov w2, w4
        cmp w2, w3
        csel w4, w2, w3, gt
        csel w2, w3, w2, gt
        mov w3, w4
        cmp w1, w2
        csel w4, w1, w2, gt
        csel w1, w2, w1, gt
        mov w2, w4
        stp w1, w2, [x0]
        str w3, [x0, #8]
    """,
}
RET = {"x86_64": "ret", "aarch64": "ret"}


def sort3(arch: str, tail: str = "") -> str:
    """sort3 followed by `tail` (which must end in a return) or by a plain return."""
    return SORT3[arch] + (tail if tail else RET[arch])
