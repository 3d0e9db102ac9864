// The AArch64 oracle runner: a static program without libc that runs entry states it reads on stdin.
//
// The same design as runner_x86_64.s (read it first), with one difference that matters under
// qemu-user, where qemu performs a guest's system calls on the host and ignores seccomp: this
// runner makes every system call through ONE `svc #0`, the last word of the page below its code
// (`sys`, at BASE + TEXT - 4), which returns by falling through to the `ret` that opens the code.
// The child unmaps that page just before it jumps, so after the jump no executable page of the
// process holds an svc (the blob's own are replaced before it is mapped, see verifier/oracle/state.py):
// the guest has no way left to ask qemu for a system call. On an arm64 host the child also installs
// the same deny-all seccomp filter as on x86-64.
//
// Assembled at BASE + TEXT - 4 with the constants (.equ lines from wire.py) prepended.

sys:
    svc #0
    ret                             // BASE + TEXT: the first word of the code

_start:
    ldr x0, a_stack_top
    mov sp, x0
    ldr x0, a_shared                // mmap(SHARED, SHARED_SIZE, RW, MAP_SHARED|ANON|FIXED_NOREPLACE)
    ldr x1, k_shared_size
    mov x2, #3
    mov x3, #0x21
    orr x3, x3, #0x100000
    mov x4, #-1
    mov x5, #0
    mov x8, #222
    bl sys
    ldr x1, a_shared
    cmp x0, x1
    b.ne quit_bad

serve:
    ldr x19, a_inbuf
    mov x1, x19
    mov x2, #64
    bl read_all
    cbz x0, quit                    // stdin closed between requests: done
    cmp x0, #64
    b.ne quit_bad
    ldr x0, [x19, #H_MAGIC]
    ldr x1, k_magic
    cmp x0, x1
    b.ne quit_bad
    ldr x2, [x19, #H_LEN]
    ldr x1, k_maxmsg
    cmp x2, x1
    b.hi quit_bad
    subs x2, x2, #64
    b.lo quit_bad
    mov x20, x2
    add x1, x19, #64
    bl read_all
    cmp x0, x20
    b.ne quit_bad
    ldr x0, a_shared                // a fresh result page
    mov x1, #PAGE
clear:
    stp xzr, xzr, [x0], #16
    subs x1, x1, #16
    b.ne clear
    mov x0, #17                     // clone(SIGCHLD, 0, 0, 0, 0): fork
    mov x1, #0
    mov x2, #0
    mov x3, #0
    mov x4, #0
    mov x8, #220
    bl sys
    cbz x0, child
    tbnz x0, #63, quit_bad
    ldr x1, a_shared                // wait4(pid, &S_WAIT, 0, NULL)
    add x1, x1, #S_WAIT
    mov x2, #0
    mov x3, #0
    mov x8, #260
    bl sys
    tbnz x0, #63, quit_bad
    ldr x21, a_shared
    ldr x0, k_magic
    str x0, [x21, #S_MAGIC]
    ldr x2, [x19, #H_PAGES]
    add x2, x2, #PAGE
    str x2, [x21, #S_LEN]
    mov x1, x21
    bl write_all
    b serve

quit:
    mov x0, #0
    mov x8, #94                     // exit_group
    bl sys
quit_bad:
    mov x0, #3
    mov x8, #94
    bl sys

// read_all(x1 = buffer, x2 = length) -> x0 = bytes read (short only at end of input)
read_all:
    mov x25, x30
    mov x22, x1
    mov x23, x2
    mov x24, #0
read_more:
    cmp x24, x23
    b.hs read_done
    mov x0, #0
    add x1, x22, x24
    sub x2, x23, x24
    mov x8, #63                     // read
    bl sys
    cmp x0, #0
    b.le read_done
    add x24, x24, x0
    b read_more
read_done:
    mov x0, x24
    ret x25

// write_all(x1 = buffer, x2 = length)
write_all:
    mov x25, x30
    mov x22, x1
    mov x23, x2
write_more:
    cbz x23, write_done
    mov x0, #1
    mov x1, x22
    mov x2, x23
    mov x8, #64                     // write
    bl sys
    cmp x0, #0
    b.le quit_bad
    add x22, x22, x0
    sub x23, x23, x0
    b write_more
write_done:
    ret x25

// --- the child: map, protect, confine, unmap the svc, jump ------------------------------------
child:
    ldr x20, [x19, #H_NMAPS]
    add x21, x19, #TABLE
    mov x22, #0
map_next:
    cmp x22, x20
    b.hs mapped
    ldr x0, [x21]
    ldr x1, [x21, #8]
    mov x2, #3
    mov x3, #0x22                   // MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE
    orr x3, x3, #0x100000
    mov x4, #-1
    mov x5, #0
    mov x8, #222
    bl sys
    ldr x1, [x21]
    cmp x0, x1
    b.ne map_failed
    ldr x2, [x21, #24]              // copy the bytes
    add x2, x2, x19
    ldr x3, [x21, #8]
copy_in:
    ldp x4, x5, [x2], #16
    stp x4, x5, [x0], #16
    subs x3, x3, #16
    b.ne copy_in
    ldr x0, [x21]
    ldr x1, [x21, #8]
    ldr x2, [x21, #16]
    mov x8, #226                    // mprotect
    bl sys
    cbnz x0, setup_failed
    add x21, x21, #32
    add x22, x22, #1
    b map_next
map_failed:                         // an error, or (qemu, old kernels: a hint only) another address
    tbnz x0, #63, setup_failed
    ldr x1, [x21, #8]
    mov x8, #215                    // munmap
    bl sys
    mov x0, #-17                    // EEXIST
setup_failed:                       // x0 = -errno, x22 = map index or setup step
    ldr x1, a_shared
    str x0, [x1, #S_ERRNO]
    str x22, [x1, #S_INDEX]
    mov x0, #ST_SETUP
    str x0, [x1, #S_STATUS]
    mov x0, #0
    mov x8, #94
    bl sys

mapped:
    mov x22, #STEP_ALTSTACK         // sigaltstack({ALTSTACK, 0, ALTSTACK_SIZE}, NULL)
    sub sp, sp, #64
    ldr x0, a_altstack
    str x0, [sp]
    str xzr, [sp, #8]
    mov x0, #ALTSTACK_SIZE
    str x0, [sp, #16]
    mov x0, sp
    mov x1, #0
    mov x8, #132
    bl sys
    cbnz x0, setup_failed
    mov x22, #STEP_SIGACTION        // every fault signal: SA_SIGINFO | SA_ONSTACK, all blocked
    adr x0, handler
    str x0, [sp]
    mov x0, #4
    orr x0, x0, #0x08000000
    str x0, [sp, #8]
    str xzr, [sp, #16]
    mov x0, #-1
    str x0, [sp, #24]
    adr x23, fault_signals
next_signal:
    ldrb w0, [x23], #1
    cbz w0, signals_done
    mov x1, sp
    mov x2, #0
    mov x3, #8
    mov x8, #134                    // rt_sigaction
    bl sys
    cbnz x0, setup_failed
    b next_signal
signals_done:
    mov x22, #STEP_TIMER            // setitimer(ITIMER_REAL, {{0, 0}, {sec, usec}}, NULL)
    stp xzr, xzr, [sp]
    ldp x0, x1, [x19, #H_SEC]
    stp x0, x1, [sp, #16]
    mov x0, #0
    mov x1, sp
    mov x2, #0
    mov x8, #103
    bl sys
    cbnz x0, setup_failed
    add sp, sp, #64
    ldr x0, [x19, #H_FLAGS]
    tbz x0, #1, confined            // F_SECCOMP
    mov x22, #STEP_SECCOMP
    mov x0, #38                     // prctl(PR_SET_NO_NEW_PRIVS, 1)
    mov x1, #1
    mov x2, #0
    mov x3, #0
    mov x4, #0
    mov x8, #167
    bl sys
    cbnz x0, setup_failed
    mov x0, #22                     // prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &deny_all)
    mov x1, #2
    adr x2, deny_all
    mov x8, #167
    bl sys
    cbnz x0, setup_failed
confined:
    mov x22, #STEP_GADGET           // munmap the page holding the only svc: the last system call
    ldr x0, a_base
    mov x1, #PAGE
    mov x8, #215
    bl sys
    cbnz x0, setup_failed
    ldr x0, [x19, #H_JUMP]
    br x0

// --- the return: the landing stub saved x16 in TPIDR_EL0 and jumped here through x16 -----------
landing:
    ldr x16, a_out
    stp x0, x1, [x16, #0]
    stp x2, x3, [x16, #16]
    stp x4, x5, [x16, #32]
    stp x6, x7, [x16, #48]
    stp x8, x9, [x16, #64]
    stp x10, x11, [x16, #80]
    stp x12, x13, [x16, #96]
    stp x14, x15, [x16, #112]
    mrs x0, tpidr_el0
    stp x0, x17, [x16, #128]
    stp x18, x19, [x16, #144]
    stp x20, x21, [x16, #160]
    stp x22, x23, [x16, #176]
    stp x24, x25, [x16, #192]
    stp x26, x27, [x16, #208]
    stp x28, x29, [x16, #224]
    str x30, [x16, #240]
    mov x0, sp
    str x0, [x16, #A64_R_SP]
    mrs x0, nzcv
    str x0, [x16, #A64_R_NZCV]
    mrs x0, fpcr
    str x0, [x16, #A64_R_FPCR]
    mrs x0, fpsr
    str x0, [x16, #A64_R_FPSR]
    add x0, x16, #A64_R_Q
    stp q0, q1, [x0], #32
    stp q2, q3, [x0], #32
    stp q4, q5, [x0], #32
    stp q6, q7, [x0], #32
    stp q8, q9, [x0], #32
    stp q10, q11, [x0], #32
    stp q12, q13, [x0], #32
    stp q14, q15, [x0], #32
    stp q16, q17, [x0], #32
    stp q18, q19, [x0], #32
    stp q20, q21, [x0], #32
    stp q22, q23, [x0], #32
    stp q24, q25, [x0], #32
    stp q26, q27, [x0], #32
    stp q28, q29, [x0], #32
    stp q30, q31, [x0], #32
    ldr x0, a_stack_top
    mov sp, x0
    ldr x9, a_shared
    mov x0, #ST_RETURNED
    str x0, [x9, #S_STATUS]
    bl copy_pages
    mov x0, #1
    str x0, [x9, #S_COMPLETE]
    .word 0                         // udf #0: the handler sees the status and ends the child

// --- faults: handler(signo = x0, siginfo = x1, ucontext = x2), on the alternate stack -----------
handler:
    ldr x9, a_shared
    ldr x10, [x9, #S_STATUS]
    cbnz x10, die
    str x0, [x9, #S_SIGNO]
    ldrsw x10, [x1, #8]
    str x10, [x9, #S_CODE]
    ldr x10, [x1, #16]              // si_addr (SIGSYS: the address after the svc)
    str x10, [x9, #S_ADDR]
    ldr x10, [x2, #248]             // uc_mcontext.regs[8]: the system call number at an svc
    str x10, [x9, #S_SYSNR]
    ldr x10, [x2, #440]             // uc_mcontext.pc
    str x10, [x9, #S_PC]
    mov x10, #ST_SIGNAL
    str x10, [x9, #S_STATUS]
    bl copy_pages
    mov x10, #1
    str x10, [x9, #S_COMPLETE]
die:
    .word 0                         // udf #0 with every signal blocked: the kernel (or qemu) kills us

// copy_pages: every map's final bytes, in table order, to SHARED + PAGE (clobbers x3-x8, x11-x13)
copy_pages:
    ldr x3, a_inbuf
    ldr x4, [x3, #H_NMAPS]
    add x5, x3, #TABLE
    ldr x6, a_shared
    add x6, x6, #PAGE
copy_next:
    cbz x4, copy_done
    ldr x7, [x5]
    ldr x8, [x5, #8]
copy_page:
    ldp x11, x12, [x7], #16
    stp x11, x12, [x6], #16
    subs x8, x8, #16
    b.ne copy_page
    add x5, x5, #32
    sub x4, x4, #1
    b copy_next
copy_done:
    ret

// --- constants ---------------------------------------------------------------------------------
fault_signals:
    .byte 4, 5, 7, 8, 11, 31, 0     // SIGILL SIGTRAP SIGBUS SIGFPE SIGSEGV SIGSYS
.align 3
a_base:         .quad BASE
a_stack_top:    .quad STACK_TOP
a_altstack:     .quad ALTSTACK
a_inbuf:        .quad INBUF
a_shared:       .quad SHARED
a_out:          .quad SHARED + OUT
k_shared_size:  .quad SHARED_SIZE
k_maxmsg:       .quad MAXMSG
k_magic:        .quad MAGIC
deny_all:                           // struct sock_fprog {1, filter}
    .quad 1
    .quad deny_filter
deny_filter:                        // BPF_RET | BPF_K, SECCOMP_RET_TRAP
    .short 6
    .byte 0, 0
    .long 0x00030000

// exports: the last word is the landing address, read by verifier/oracle/runner.py
.align 3
exports:
    .quad landing
