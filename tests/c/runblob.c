/* Runs a raw code blob on the real CPU (x86-64 natively, AArch64 under qemu-aarch64) and prints
   what it did, for the adversarial tier (tests/test_adversarial.py, tests/native.py).

   usage: runblob CODE-FILE [key=hex ...]
     base=A        where the code is mapped (default 0x400000, as nverify assumes)
     rN=V          entry value of register N (x86-64 encoding order rax rcx rdx rbx rsp rbp rsi rdi
                   r8..r15, rsp ignored; AArch64 x0..x28, x16 ignored: it carries the blob's address)
     mem=BYTES     contents of a data buffer (hex), placed at offset off= (default 0x40) in a
                   page-aligned mapping; arr=N puts its address plus adj= (default 0) into register N
                   (repeatable)
     flags=V       rflags / nzcv at entry
     ctl0=V ctl1=V x86-64: MXCSR and the x87 control word; AArch64: FPCR and FPSR
     x87pe=1       raise the x87 precision flag (an inexact long double division) before the call

   A child process makes the call, so a fault is seen as a signal. Output, one line:
     ret r0=.. r1=.. ... sp=.. flags=.. ctl0=.. ctl1=.. ctl2=.. ctl3=.. mem=..   (it returned)
     signal N code C addr A                                             (it faulted)
     exit N                                                             (it ended the process itself)
     killed N                                                           (killed: 14 is the 5 s alarm)
   ctl2 and ctl3 are the x87 status and tag words on x86-64 (0 on AArch64); sp is relative to the
   stack pointer the blob was entered with. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#ifdef __x86_64__
#define NREG 16
#define SP_REG 4
#define FN_REG (-1)
#else
#define NREG 31
#define SP_REG (-1)
#define FN_REG 16
#endif

uint64_t g_in[32], g_out[32], g_ctl_in[3], g_ctl_out[4];
uint16_t g_env[16];
uint64_t g_flags_in, g_flags_out, g_fn, g_saved_sp, g_entry_sp;

void run_blob(void);

#ifdef __x86_64__
__asm__(
    ".text\n.globl run_blob\nrun_blob:\n"
    " push %rbx\n push %rbp\n push %r12\n push %r13\n push %r14\n push %r15\n"
    " mov %rsp, g_saved_sp(%rip)\n and $-16, %rsp\n"
    " lea -8(%rsp), %rax\n mov %rax, g_entry_sp(%rip)\n"
    " ldmxcsr g_ctl_in(%rip)\n fldcw g_ctl_in+8(%rip)\n"
    " pushq g_flags_in(%rip)\n popfq\n"
    " mov g_in+8(%rip), %rcx\n mov g_in+16(%rip), %rdx\n mov g_in+24(%rip), %rbx\n"
    " mov g_in+40(%rip), %rbp\n mov g_in+48(%rip), %rsi\n mov g_in+56(%rip), %rdi\n"
    " mov g_in+64(%rip), %r8\n mov g_in+72(%rip), %r9\n mov g_in+80(%rip), %r10\n"
    " mov g_in+88(%rip), %r11\n mov g_in+96(%rip), %r12\n mov g_in+104(%rip), %r13\n"
    " mov g_in+112(%rip), %r14\n mov g_in+120(%rip), %r15\n mov g_in+0(%rip), %rax\n"
    " call *g_fn(%rip)\n"
    " mov %rax, g_out+0(%rip)\n mov %rcx, g_out+8(%rip)\n mov %rdx, g_out+16(%rip)\n"
    " mov %rbx, g_out+24(%rip)\n mov %rsp, g_out+32(%rip)\n mov %rbp, g_out+40(%rip)\n"
    " mov %rsi, g_out+48(%rip)\n mov %rdi, g_out+56(%rip)\n mov %r8, g_out+64(%rip)\n"
    " mov %r9, g_out+72(%rip)\n mov %r10, g_out+80(%rip)\n mov %r11, g_out+88(%rip)\n"
    " mov %r12, g_out+96(%rip)\n mov %r13, g_out+104(%rip)\n mov %r14, g_out+112(%rip)\n"
    " mov %r15, g_out+120(%rip)\n"
    " mov g_saved_sp(%rip), %rsp\n"
    " pushfq\n popq g_flags_out(%rip)\n"
    " stmxcsr g_ctl_out(%rip)\n fnstcw g_ctl_out+8(%rip)\n fnstsw g_ctl_out+16(%rip)\n fnstenv g_env(%rip)\n"
    " pop %r15\n pop %r14\n pop %r13\n pop %r12\n pop %rbp\n pop %rbx\n ret\n");
#else
__asm__(
    ".text\n.globl run_blob\nrun_blob:\n"
    " stp x29, x30, [sp, #-96]!\n stp x19, x20, [sp, #16]\n stp x21, x22, [sp, #32]\n"
    " stp x23, x24, [sp, #48]\n stp x25, x26, [sp, #64]\n stp x27, x28, [sp, #80]\n"
    " adrp x16, g_saved_sp\n mov x17, sp\n str x17, [x16, :lo12:g_saved_sp]\n"
    " adrp x16, g_entry_sp\n str x17, [x16, :lo12:g_entry_sp]\n"
    " adrp x16, g_ctl_in\n add x16, x16, :lo12:g_ctl_in\n"
    " ldr x17, [x16]\n msr fpcr, x17\n ldr x17, [x16, #8]\n msr fpsr, x17\n"
    " adrp x16, g_flags_in\n ldr x17, [x16, :lo12:g_flags_in]\n msr nzcv, x17\n"
    " adrp x16, g_in\n add x16, x16, :lo12:g_in\n"
    " ldp x0, x1, [x16]\n ldp x2, x3, [x16, #16]\n ldp x4, x5, [x16, #32]\n ldp x6, x7, [x16, #48]\n"
    " ldp x8, x9, [x16, #64]\n ldp x10, x11, [x16, #80]\n ldp x12, x13, [x16, #96]\n"
    " ldp x14, x15, [x16, #112]\n ldp x18, x19, [x16, #144]\n ldp x20, x21, [x16, #160]\n"
    " ldp x22, x23, [x16, #176]\n ldp x24, x25, [x16, #192]\n ldp x26, x27, [x16, #208]\n"
    " ldr x28, [x16, #224]\n ldr x17, [x16, #136]\n"
    " adrp x16, g_fn\n ldr x16, [x16, :lo12:g_fn]\n"
    " blr x16\n"
    " adrp x16, g_out\n add x16, x16, :lo12:g_out\n"
    " stp x0, x1, [x16]\n stp x2, x3, [x16, #16]\n stp x4, x5, [x16, #32]\n stp x6, x7, [x16, #48]\n"
    " stp x8, x9, [x16, #64]\n stp x10, x11, [x16, #80]\n stp x12, x13, [x16, #96]\n"
    " stp x14, x15, [x16, #112]\n stp x16, x17, [x16, #128]\n stp x18, x19, [x16, #144]\n"
    " stp x20, x21, [x16, #160]\n stp x22, x23, [x16, #176]\n stp x24, x25, [x16, #192]\n"
    " stp x26, x27, [x16, #208]\n stp x28, x29, [x16, #224]\n str x30, [x16, #240]\n"
    " mov x17, sp\n str x17, [x16, #248]\n"
    " mrs x17, nzcv\n adrp x16, g_flags_out\n str x17, [x16, :lo12:g_flags_out]\n"
    " adrp x16, g_ctl_out\n add x16, x16, :lo12:g_ctl_out\n"
    " mrs x17, fpcr\n str x17, [x16]\n mrs x17, fpsr\n str x17, [x16, #8]\n"
    " adrp x16, g_saved_sp\n ldr x17, [x16, :lo12:g_saved_sp]\n mov sp, x17\n"
    " ldp x19, x20, [sp, #16]\n ldp x21, x22, [sp, #32]\n ldp x23, x24, [sp, #48]\n"
    " ldp x25, x26, [sp, #64]\n ldp x27, x28, [sp, #80]\n ldp x29, x30, [sp], #96\n ret\n");
#endif

static char g_line[8192];

static void say(const char *s) {
    size_t n = strlen(s);
    while (n > 0) {
        ssize_t w = write(1, s, n);
        if (w <= 0) break;
        s += w;
        n -= (size_t)w;
    }
}

static void on_fault(int sig, siginfo_t *si, void *uctx) {
    (void)uctx;
    snprintf(g_line, sizeof g_line, "signal %d code %d addr %#lx\n", sig, si->si_code,
             (unsigned long)si->si_addr);
    say(g_line);
    _exit(0);
}

static size_t unhex(const char *s, unsigned char *out, size_t cap) {
    size_t n = 0;
    for (; s[0] && s[1] && n < cap; s += 2) {
        char b[3] = {s[0], s[1], 0};
        out[n++] = (unsigned char)strtoul(b, NULL, 16);
    }
    return n;
}

static unsigned char *g_mem;
static size_t g_mem_len, g_mem_off = 0x40, g_adj;

static void child(void) {
    static char altstack[65536];
    stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack};
    sigaltstack(&ss, NULL);
    struct sigaction sa = {0};
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGSYS};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) sigaction(sigs[i], &sa, NULL);
    alarm(5);
    run_blob();
    char *p = g_line;
    p += sprintf(p, "ret");
    for (int i = 0; i < NREG; i++)
        if (i != SP_REG) p += sprintf(p, " r%d=%#lx", i, (unsigned long)g_out[i]);
#ifdef __x86_64__
    uint64_t sp = g_out[SP_REG];
    g_ctl_out[3] = g_env[4];
#else
    uint64_t sp = g_out[31];
#endif
    p += sprintf(p, " sp=%ld flags=%#lx ctl0=%#lx ctl1=%#lx ctl2=%#lx ctl3=%#lx mem=", (long)(sp - g_entry_sp),
                 (unsigned long)g_flags_out, (unsigned long)g_ctl_out[0], (unsigned long)g_ctl_out[1],
                 (unsigned long)g_ctl_out[2], (unsigned long)g_ctl_out[3]);
    for (size_t i = 0; i < g_mem_len; i++) p += sprintf(p, "%02x", g_mem[g_mem_off + i]);
    sprintf(p, "\n");
    say(g_line);
    _exit(0);
}

static void raise_x87_inexact(void) {
#ifdef __x86_64__
    volatile long double third = 1.0L;
    third /= 3.0L;
#endif
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: runblob CODE-FILE [key=hex ...]\n");
        return 2;
    }
    uint64_t base = 0x400000;
    int arr_regs[8], n_arr = 0, x87pe = 0;
    const char *mem = NULL;
#ifdef __x86_64__
    g_ctl_in[0] = 0x1f80;
    g_ctl_in[1] = 0x37f;
    g_flags_in = 0x202;
#endif
    g_mem = mmap(NULL, 0x2000, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    for (int i = 2; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (!eq) continue;
        *eq = 0;
        const char *k = argv[i], *v = eq + 1;
        uint64_t x = strtoull(v, NULL, 16);
        if (k[0] == 'r' && k[1] >= '0' && k[1] <= '9') g_in[atoi(k + 1)] = x;
        else if (!strcmp(k, "base")) base = x;
        else if (!strcmp(k, "off")) g_mem_off = x;
        else if (!strcmp(k, "adj")) g_adj = x;
        else if (!strcmp(k, "mem")) mem = v;
        else if (!strcmp(k, "arr") && n_arr < 8) arr_regs[n_arr++] = (int)x;
        else if (!strcmp(k, "flags")) g_flags_in = x;
        else if (!strcmp(k, "ctl0")) g_ctl_in[0] = x;
        else if (!strcmp(k, "ctl1")) g_ctl_in[1] = x;
        else if (!strcmp(k, "x87pe")) x87pe = 1;
    }
    if (mem) g_mem_len = unhex(mem, g_mem + g_mem_off, 0x2000 - g_mem_off);
    for (int i = 0; i < n_arr; i++) g_in[arr_regs[i]] = (uint64_t)(g_mem + g_mem_off + g_adj);
    FILE *f = fopen(argv[1], "rb");
    if (!f) {
        perror(argv[1]);
        return 2;
    }
    unsigned char code[65536];
    size_t len = fread(code, 1, sizeof code, f);
    fclose(f);
    void *at = mmap((void *)base, 0x10000, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
                    -1, 0);
    if (at != (void *)base) {
        fprintf(stderr, "runblob: cannot map the code at %#lx\n", (unsigned long)base);
        return 2;
    }
    memcpy(at, code, len);
    mprotect(at, 0x10000, PROT_READ | PROT_EXEC);
    __builtin___clear_cache((char *)at, (char *)at + len);
    g_fn = base;
    if (x87pe) raise_x87_inexact();
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) child();
    int status = 0;
    waitpid(pid, &status, 0);
    if (WIFEXITED(status) && WEXITSTATUS(status) != 0) printf("exit %d\n", WEXITSTATUS(status));
    else if (WIFSIGNALED(status)) printf("killed %d\n", WTERMSIG(status));
    return 0;
}
