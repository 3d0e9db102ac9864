"""Reference kernels in assembly, one per ISA, that the soundness tests mutate and booby-trap."""

SORT3 = {
    "x86_64": """
        mov eax, [rdi]
        mov ecx, [rdi+4]
        mov edx, [rdi+8]
        cmp eax, ecx
        mov esi, eax
        cmovg eax, ecx
        cmovg ecx, esi
        cmp ecx, edx
        mov esi, ecx
        cmovg ecx, edx
        cmovg edx, esi
        cmp eax, ecx
        mov esi, eax
        cmovg eax, ecx
        cmovg ecx, esi
        mov [rdi], eax
        mov [rdi+4], ecx
        mov [rdi+8], edx
    """,
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
