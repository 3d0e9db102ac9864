"""Hand-written assembly for every spec in specs/, per ISA (Intel syntax / GNU syntax)."""

from __future__ import annotations


def _network(arch: str, n: int, pairs: list[tuple[int, int]]) -> str:
    if arch == "x86_64":
        regs = ["eax", "ecx", "edx", "esi", "r8d", "r10d", "r11d", "ebx"][:n]
        saved = n > 7   # the eighth element lives in callee-saved rbx: saved and restored
        out = ["push rbx"] * saved + [f"mov {r}, [rdi+{4 * i}]" for i, r in enumerate(regs)]
        for a, b in pairs:
            ra, rb = regs[a], regs[b]
            out += [f"mov r9d, {ra}", f"cmp {ra}, {rb}", f"cmovg {ra}, {rb}", f"cmovg {rb}, r9d"]
        out += [f"mov [rdi+{4 * i}], {r}" for i, r in enumerate(regs)] + ["pop rbx"] * saved + ["ret"]
    else:
        regs = [f"w{i}" for i in range(1, n + 1)]
        out = [f"ldr {r}, [x0, #{4 * i}]" for i, r in enumerate(regs)]
        for a, b in pairs:
            ra, rb = regs[a], regs[b]
            out += [f"cmp {ra}, {rb}", f"csel w9, {ra}, {rb}, gt", f"csel {ra}, {rb}, {ra}, gt", f"mov {rb}, w9"]
        out += [f"str {r}, [x0, #{4 * i}]" for i, r in enumerate(regs)] + ["ret"]
    return "\n".join(out)


NETWORKS = {
    "sort3": (3, [(0, 1), (1, 2), (0, 1)]),
    "sort4": (4, [(0, 1), (2, 3), (0, 2), (1, 3), (1, 2)]),
    "sort5": (5, [(0, 1), (3, 4), (2, 4), (2, 3), (0, 3), (0, 2), (1, 4), (1, 3), (1, 2)]),
    # Optimal-size networks (Knuth 5.3.4); each checked by the 0-1 principle in tests/test_library.py.
    "sort6": (6, [(0, 5), (1, 3), (2, 4), (1, 2), (3, 4), (0, 3), (2, 5), (0, 1), (2, 3), (4, 5), (1, 2), (3, 4)]),
    "sort7": (7, [(0, 6), (2, 3), (4, 5), (0, 2), (1, 4), (3, 6), (0, 1), (2, 5), (3, 4), (1, 2), (4, 6), (2, 3),
                  (4, 5), (1, 2), (3, 4), (5, 6)]),
    "sort8": (8, [(0, 2), (1, 3), (4, 6), (5, 7), (0, 4), (1, 5), (2, 6), (3, 7), (0, 1), (2, 3), (4, 5), (6, 7),
                  (2, 4), (3, 5), (1, 4), (3, 6), (1, 2), (3, 4), (5, 6)]),
}

X86 = {
    "p01": "lea eax, [rdi-1]\n and eax, edi\n ret",
    "p02": "lea eax, [rdi+1]\n and eax, edi\n ret",
    "p03": "mov eax, edi\n neg eax\n and eax, edi\n ret",
    "p04": "lea eax, [rdi-1]\n xor eax, edi\n ret",
    "p05": "lea eax, [rdi-1]\n or eax, edi\n ret",
    "p06": "lea eax, [rdi+1]\n or eax, edi\n ret",
    "p07": "lea eax, [rdi+1]\n mov ecx, edi\n not ecx\n and eax, ecx\n ret",
    "p08": "lea eax, [rdi-1]\n mov ecx, edi\n not ecx\n and eax, ecx\n ret",
    "p09": "mov ecx, edi\n sar ecx, 31\n mov eax, edi\n xor eax, ecx\n sub eax, ecx\n ret",
    "p10": "mov ecx, edi\n and ecx, esi\n xor edi, esi\n xor eax, eax\n cmp edi, ecx\n setbe al\n ret",
    "p11": "mov eax, esi\n not eax\n and eax, edi\n xor ecx, ecx\n cmp eax, esi\n seta cl\n mov eax, ecx\n ret",
    "p12": "mov eax, edi\n not eax\n and eax, esi\n xor ecx, ecx\n cmp eax, edi\n setbe cl\n mov eax, ecx\n ret",
    "p13": "mov eax, edi\n sar eax, 31\n neg edi\n shr edi, 31\n or eax, edi\n ret",
    "p14": "mov eax, edi\n and eax, esi\n xor edi, esi\n sar edi, 1\n add eax, edi\n ret",
    "p15": "mov eax, edi\n or eax, esi\n xor edi, esi\n sar edi, 1\n sub eax, edi\n ret",
    "p16": "mov eax, edi\n cmp edi, esi\n cmovb eax, esi\n ret",
    "p17": "lea eax, [rdi-1]\n or eax, edi\n add eax, 1\n and eax, edi\n ret",
    "p18": "lea ecx, [rdi-1]\n test ecx, edi\n sete al\n test edi, edi\n setne cl\n and al, cl\n"
           " movzx eax, al\n ret",
    "p19": "mov eax, edi\n mov ecx, edx\n shr eax, cl\n xor eax, edi\n and eax, esi\n mov r8d, eax\n"
           " shl r8d, cl\n xor eax, r8d\n xor eax, edi\n ret",
    "p20": "mov eax, edi\n neg eax\n and eax, edi\n lea ecx, [rdi+rax]\n mov edx, ecx\n xor edx, edi\n"
           " shr edx, 2\n mov r8d, eax\n mov eax, edx\n xor edx, edx\n div r8d\n or eax, ecx\n ret",
    "p21": "mov eax, edx\n cmp edi, esi\n je done\n mov eax, ecx\n cmp edi, edx\n je done\n mov eax, esi\n"
           " done: ret",
    "p22": "mov eax, edi\n shr eax, 16\n xor eax, edi\n mov ecx, eax\n shr ecx, 8\n xor eax, ecx\n"
           " mov ecx, eax\n shr ecx, 4\n xor eax, ecx\n mov ecx, eax\n shr ecx, 2\n xor eax, ecx\n"
           " mov ecx, eax\n shr ecx, 1\n xor eax, ecx\n and eax, 1\n ret",
    "p23": "mov eax, edi\n shr eax, 1\n and eax, 0x55555555\n sub edi, eax\n mov eax, edi\n shr edi, 2\n"
           " and eax, 0x33333333\n and edi, 0x33333333\n add eax, edi\n mov ecx, eax\n shr ecx, 4\n"
           " add eax, ecx\n and eax, 0x0f0f0f0f\n imul eax, eax, 0x01010101\n shr eax, 24\n ret",
    "p24": "lea eax, [rdi-1]\n" + "".join(f" mov ecx, eax\n shr ecx, {s}\n or eax, ecx\n" for s in (1, 2, 4, 8, 16))
           + " add eax, 1\n ret",
    "bswap32": "mov eax, edi\n bswap eax\n ret",
    "clamp": "mov eax, edi\n cmp edi, esi\n cmovl eax, esi\n cmp eax, edx\n cmovg eax, edx\n ret",
    "mulhu": "mov eax, edi\n mul esi\n mov eax, edx\n ret",
    # p25 as Hacker's Delight writes it: four 16x16-bit products and the carries between them
    "p25": "movzx eax, di\n shr edi, 16\n movzx ecx, si\n shr esi, 16\n mov edx, eax\n imul edx, ecx\n"
           " imul ecx, edi\n imul eax, esi\n imul edi, esi\n shr edx, 16\n add ecx, edx\n movzx edx, cx\n"
           " shr ecx, 16\n add eax, edx\n shr eax, 16\n add eax, ecx\n add eax, edi\n ret",
    "dot3": "mov eax, [rdi]\n imul eax, [rsi]\n mov ecx, [rdi+4]\n imul ecx, [rsi+4]\n add eax, ecx\n"
            " mov ecx, [rdi+8]\n imul ecx, [rsi+8]\n add eax, ecx\n ret",
    "min": "mov eax, edi\n cmp edi, esi\n cmovg eax, esi\n ret",
    "max": "mov eax, edi\n cmp edi, esi\n cmovl eax, esi\n ret",
    "abs": "mov eax, edi\n neg eax\n cmovs eax, edi\n ret",
}
X86["popcount"] = X86["p23"]

A64 = {
    "p01": "sub w1, w0, #1\n and w0, w0, w1\n ret",
    "p02": "add w1, w0, #1\n and w0, w0, w1\n ret",
    "p03": "neg w1, w0\n and w0, w0, w1\n ret",
    "p04": "sub w1, w0, #1\n eor w0, w0, w1\n ret",
    "p05": "sub w1, w0, #1\n orr w0, w0, w1\n ret",
    "p06": "add w1, w0, #1\n orr w0, w0, w1\n ret",
    "p07": "add w1, w0, #1\n bic w0, w1, w0\n ret",
    "p08": "sub w1, w0, #1\n bic w0, w1, w0\n ret",
    "p09": "cmp w0, #0\n cneg w0, w0, lt\n ret",
    "p10": "and w2, w0, w1\n eor w3, w0, w1\n cmp w3, w2\n cset w0, ls\n ret",
    "p11": "bic w2, w0, w1\n cmp w2, w1\n cset w0, hi\n ret",
    "p12": "bic w2, w1, w0\n cmp w2, w0\n cset w0, ls\n ret",
    "p13": "asr w1, w0, #31\n neg w2, w0\n orr w0, w1, w2, lsr #31\n ret",
    "p14": "and w2, w0, w1\n eor w3, w0, w1\n add w0, w2, w3, asr #1\n ret",
    "p15": "orr w2, w0, w1\n eor w3, w0, w1\n sub w0, w2, w3, asr #1\n ret",
    "p16": "cmp w0, w1\n csel w0, w0, w1, hs\n ret",
    "p17": "sub w1, w0, #1\n orr w1, w1, w0\n add w1, w1, #1\n and w0, w1, w0\n ret",
    "p18": "sub w1, w0, #1\n tst w1, w0\n cset w1, eq\n cmp w0, #0\n cset w2, ne\n and w0, w1, w2\n ret",
    "p19": "lsr w3, w0, w2\n eor w3, w3, w0\n and w3, w3, w1\n lsl w4, w3, w2\n eor w3, w3, w4\n"
           " eor w0, w3, w0\n ret",
    "p20": "neg w1, w0\n and w1, w1, w0\n add w2, w0, w1\n eor w3, w0, w2\n lsr w3, w3, #2\n"
           " udiv w3, w3, w1\n orr w0, w2, w3\n ret",
    "p21": "cmp w0, w1\n b.eq isa\n cmp w0, w2\n csel w0, w3, w1, eq\n ret\n isa: mov w0, w2\n ret",
    "p22": "".join(f"eor w0, w0, w0, lsr #{s}\n " for s in (16, 8, 4, 2, 1)) + "and w0, w0, #1\n ret",
    "p23": "lsr w1, w0, #1\n and w1, w1, #0x55555555\n sub w0, w0, w1\n and w1, w0, #0x33333333\n"
           " lsr w0, w0, #2\n and w0, w0, #0x33333333\n add w0, w0, w1\n add w0, w0, w0, lsr #4\n"
           " and w0, w0, #0x0f0f0f0f\n mov w1, #0x0101\n movk w1, #0x0101, lsl #16\n mul w0, w0, w1\n"
           " lsr w0, w0, #24\n ret",
    "p24": "sub w0, w0, #1\n" + "".join(f" orr w0, w0, w0, lsr #{s}\n" for s in (1, 2, 4, 8, 16))
           + " add w0, w0, #1\n ret",
    "bswap32": "rev w0, w0\n ret",
    "clamp": "cmp w0, w1\n csel w0, w1, w0, lt\n cmp w0, w2\n csel w0, w2, w0, gt\n ret",
    "mulhu": "umull x0, w0, w1\n lsr x0, x0, #32\n ret",
    "p25": "and w2, w0, #0xffff\n lsr w0, w0, #16\n and w3, w1, #0xffff\n lsr w1, w1, #16\n mul w4, w2, w3\n"
           " mul w5, w0, w3\n mul w2, w2, w1\n mul w0, w0, w1\n add w5, w5, w4, lsr #16\n"
           " and w4, w5, #0xffff\n add w2, w2, w4\n add w0, w0, w5, lsr #16\n add w0, w0, w2, lsr #16\n ret",
    "dot3": "ldp w2, w3, [x0]\n ldp w4, w5, [x1]\n mul w2, w2, w4\n madd w2, w3, w5, w2\n ldr w3, [x0, #8]\n"
            " ldr w4, [x1, #8]\n madd w0, w3, w4, w2\n ret",
    "min": "cmp w0, w1\n csel w0, w0, w1, le\n ret",
    "max": "cmp w0, w1\n csel w0, w0, w1, ge\n ret",
    "abs": "cmp w0, #0\n cneg w0, w0, mi\n ret",
}
A64["popcount"] = A64["p23"]

# Loops over arrays (the loops/VLA issue): the obvious loop, one element per iteration.
X86.update({
    "sum": "xor eax, eax\n xor ecx, ecx\n l: cmp rcx, rsi\n jae d\n add eax, dword ptr [rdi + rcx*4]\n"
           " inc rcx\n jmp l\n d: ret",
    "copy": "xor ecx, ecx\n l: cmp rcx, rdx\n jae d\n mov al, byte ptr [rsi + rcx]\n mov byte ptr [rdi + rcx], al\n"
            " inc rcx\n jmp l\n d: ret",
    "max8": "mov eax, dword ptr [rdi]\n mov ecx, 1\n l: mov edx, dword ptr [rdi + rcx*4]\n cmp edx, eax\n"
            " cmovg eax, edx\n inc rcx\n cmp rcx, 8\n jne l\n ret",
    "strnlen": "xor eax, eax\n l: cmp rax, rsi\n jae d\n cmp byte ptr [rdi + rax], 0\n je d\n inc rax\n jmp l\n"
               " d: ret",
    "dot": "xor eax, eax\n xor ecx, ecx\n l: cmp rcx, rdx\n jae d\n mov r8d, dword ptr [rdi + rcx*4]\n"
           " imul r8d, dword ptr [rsi + rcx*4]\n add eax, r8d\n inc rcx\n jmp l\n d: ret",
})
A64.update({
    "sum": "mov w2, #0\n mov x3, #0\n l: cmp x3, x1\n b.hs d\n ldr w4, [x0, x3, lsl #2]\n add w2, w2, w4\n"
           " add x3, x3, #1\n b l\n d: mov w0, w2\n ret",
    "copy": "mov x3, #0\n l: cmp x3, x2\n b.hs d\n ldrb w4, [x1, x3]\n strb w4, [x0, x3]\n add x3, x3, #1\n"
            " b l\n d: ret",
    "max8": "ldr w1, [x0]\n mov x2, #1\n l: ldr w3, [x0, x2, lsl #2]\n cmp w3, w1\n csel w1, w3, w1, gt\n"
            " add x2, x2, #1\n cmp x2, #8\n b.ne l\n mov w0, w1\n ret",
    "strnlen": "mov x2, #0\n l: cmp x2, x1\n b.hs d\n ldrb w3, [x0, x2]\n cbz w3, d\n add x2, x2, #1\n b l\n"
               " d: mov x0, x2\n ret",
    "dot": "mov w3, #0\n mov x4, #0\n l: cmp x4, x2\n b.hs d\n ldr w5, [x0, x4, lsl #2]\n"
           " ldr w6, [x1, x4, lsl #2]\n madd w3, w5, w6, w3\n add x4, x4, #1\n b l\n d: mov w0, w3\n ret",
})

ASM = {"x86_64": X86, "aarch64": A64}
for _arch, _table in ASM.items():
    for _name, (_n, _pairs) in NETWORKS.items():
        _table[_name] = _network(_arch, _n, _pairs)
