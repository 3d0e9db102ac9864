; The x86-64 oracle runner: a static program without libc that runs entry states it reads on stdin.
;
; verifier/oracle/runner.py prepends the constants (.equ lines from wire.py) and assembles this at
; BASE + TEXT. The process serves requests until stdin closes: for each one it forks a child that
; maps the state's pages at their exact addresses (MAP_FIXED_NOREPLACE, and the address checked),
; installs signal handlers on an alternate stack, arms a wall-clock timer, confines itself with a
; seccomp filter that turns EVERY system call into SIGSYS, and jumps to the state's trampoline page,
; which loads every register and jumps to the entry. The landing stub at the return address comes
; back to `landing`, which stores the final registers in the shared result page. Both the landing
; and the signal handler copy the state's pages there too, then end the child with ud2 while every
; signal is blocked (so the kernel kills it: no system call is ever needed after the jump). The
; parent waits for the child and writes the result page and the page copies to stdout.

_start:
    movabs rsp, STACK_TOP
    movabs rdi, SHARED
    mov esi, SHARED_SIZE
    mov edx, 3                      ; PROT_READ | PROT_WRITE
    mov r10d, 0x100021              ; MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE
    mov r8, -1
    xor r9d, r9d
    mov eax, 9                      ; mmap
    syscall
    movabs rdi, SHARED
    cmp rax, rdi
    jne quit_bad
    cld

serve:
    movabs rsi, INBUF
    mov edx, 64
    call read_all
    test rax, rax
    jz quit                         ; stdin closed between requests: done
    cmp rax, 64
    jne quit_bad
    movabs rbx, INBUF
    movabs rax, MAGIC
    cmp qword ptr [rbx + H_MAGIC], rax
    jne quit_bad
    mov rdx, qword ptr [rbx + H_LEN]
    cmp rdx, MAXMSG
    ja quit_bad
    sub rdx, 64
    jb quit_bad
    lea rsi, [rbx + 64]
    mov r12, rdx
    call read_all
    cmp rax, r12
    jne quit_bad
    movabs rdi, SHARED              ; a fresh result page
    xor eax, eax
    mov ecx, 512
    rep stosq
    mov edi, 17                     ; clone(SIGCHLD, 0, 0, 0, 0): fork
    xor esi, esi
    xor edx, edx
    xor r10d, r10d
    xor r8d, r8d
    mov eax, 56
    syscall
    test rax, rax
    jz child
    js quit_bad
    mov rdi, rax                    ; wait4(pid, &S_WAIT, 0, NULL)
    movabs rsi, SHARED
    add rsi, S_WAIT
    xor edx, edx
    xor r10d, r10d
    mov eax, 61
    syscall
    test rax, rax
    js quit_bad
    movabs rbx, SHARED
    movabs rax, MAGIC
    mov qword ptr [rbx + S_MAGIC], rax
    movabs rcx, INBUF
    mov rdx, qword ptr [rcx + H_PAGES]
    add rdx, PAGE
    mov qword ptr [rbx + S_LEN], rdx
    mov rsi, rbx
    call write_all
    jmp serve

quit:
    xor edi, edi
    mov eax, 231                    ; exit_group
    syscall
quit_bad:
    mov edi, 3
    mov eax, 231
    syscall

; read_all(rsi = buffer, rdx = length) -> rax = bytes read (short only at end of input)
read_all:
    xor r8d, r8d
read_more:
    cmp r8, rdx
    jae read_done
    push rsi
    push rdx
    push r8
    add rsi, r8
    sub rdx, r8
    xor edi, edi
    xor eax, eax                    ; read(0, ...)
    syscall
    pop r8
    pop rdx
    pop rsi
    test rax, rax
    jle read_done
    add r8, rax
    jmp read_more
read_done:
    mov rax, r8
    ret

; write_all(rsi = buffer, rdx = length)
write_all:
    test rdx, rdx
    jz write_done
    mov edi, 1
    mov eax, 1                      ; write(1, ...)
    push rsi
    push rdx
    syscall
    pop rdx
    pop rsi
    test rax, rax
    jle quit_bad
    add rsi, rax
    sub rdx, rax
    jmp write_all
write_done:
    ret

; --- the child: map, protect, confine, jump -------------------------------------------------
child:
    movabs rbx, INBUF
    mov r12, qword ptr [rbx + H_NMAPS]
    lea r13, [rbx + TABLE]
    xor r14d, r14d
map_next:
    cmp r14, r12
    jae mapped
    mov rdi, qword ptr [r13]
    mov rsi, qword ptr [r13 + 8]
    mov edx, 3
    mov r10d, 0x100022              ; MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE
    mov r8, -1
    xor r9d, r9d
    mov eax, 9
    syscall
    cmp rax, qword ptr [r13]
    jne map_failed
    mov rdi, rax
    mov rsi, qword ptr [r13 + 24]
    add rsi, rbx
    mov rcx, qword ptr [r13 + 8]
    rep movsb
    mov rdi, qword ptr [r13]
    mov rsi, qword ptr [r13 + 8]
    mov rdx, qword ptr [r13 + 16]
    mov eax, 10                     ; mprotect
    syscall
    test rax, rax
    jnz setup_failed
    add r13, 32
    inc r14
    jmp map_next
map_failed:
    test rax, rax                   ; an error, or (old kernels, hint only) another address
    js setup_failed
    mov rdi, rax
    mov rsi, qword ptr [r13 + 8]
    mov eax, 11                     ; munmap
    syscall
    mov rax, -17                    ; EEXIST
setup_failed:                       ; rax = -errno, r14 = map index or setup step
    movabs rbx, SHARED
    mov qword ptr [rbx + S_ERRNO], rax
    mov qword ptr [rbx + S_INDEX], r14
    mov qword ptr [rbx + S_STATUS], ST_SETUP
    xor edi, edi
    mov eax, 231
    syscall

mapped:
    mov r14d, STEP_ALTSTACK         ; sigaltstack({ALTSTACK, 0, ALTSTACK_SIZE}, NULL)
    sub rsp, 64
    movabs rax, ALTSTACK
    mov qword ptr [rsp], rax
    mov qword ptr [rsp + 8], 0
    mov qword ptr [rsp + 16], ALTSTACK_SIZE
    mov rdi, rsp
    xor esi, esi
    mov eax, 131
    syscall
    test rax, rax
    jnz setup_failed
    mov r14d, STEP_SIGACTION        ; every fault signal: SA_SIGINFO | SA_ONSTACK | SA_RESTORER, all blocked
    lea rax, [rip + handler]
    mov qword ptr [rsp], rax
    mov qword ptr [rsp + 8], 0x0C000004
    lea rax, [rip + die]
    mov qword ptr [rsp + 16], rax
    mov qword ptr [rsp + 24], -1
    lea r15, [rip + fault_signals]
next_signal:
    movzx edi, byte ptr [r15]
    test edi, edi
    jz signals_done
    mov rsi, rsp
    xor edx, edx
    mov r10d, 8
    mov eax, 13                     ; rt_sigaction
    syscall
    test rax, rax
    jnz setup_failed
    inc r15
    jmp next_signal
signals_done:
    mov r14d, STEP_TIMER            ; setitimer(ITIMER_REAL, {{0, 0}, {sec, usec}}, NULL)
    mov qword ptr [rsp], 0
    mov qword ptr [rsp + 8], 0
    mov rax, qword ptr [rbx + H_SEC]
    mov qword ptr [rsp + 16], rax
    mov rax, qword ptr [rbx + H_USEC]
    mov qword ptr [rsp + 24], rax
    xor edi, edi
    mov rsi, rsp
    xor edx, edx
    mov eax, 38
    syscall
    test rax, rax
    jnz setup_failed
    add rsp, 64
    test qword ptr [rbx + H_FLAGS], F_SECCOMP
    jz confined
    mov r14d, STEP_SECCOMP
    mov edi, 38                     ; prctl(PR_SET_NO_NEW_PRIVS, 1)
    mov esi, 1
    xor edx, edx
    xor r10d, r10d
    xor r8d, r8d
    mov eax, 157
    syscall
    test rax, rax
    jnz setup_failed
    mov edi, 22                     ; prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &deny_all)
    mov esi, 2
    lea rdx, [rip + deny_all]
    mov eax, 157
    syscall
    test rax, rax
    jnz setup_failed
confined:                           ; from here on, any system call raises SIGSYS
    mov rax, qword ptr [rbx + H_JUMP]
    jmp rax

; --- the return: the landing stub at the return address jumps here ---------------------------
landing:
    .byte 0x48, 0xa3                ; mov [moffs64], rax (keystone misencodes the moffs form)
    .quad SHARED + OUT
    movabs rax, SHARED + OUT
    mov qword ptr [rax + 8], rbx
    mov qword ptr [rax + 16], rcx
    mov qword ptr [rax + 24], rdx
    mov qword ptr [rax + 32], rsi
    mov qword ptr [rax + 40], rdi
    mov qword ptr [rax + 48], rbp
    mov qword ptr [rax + 56], rsp
    mov qword ptr [rax + 64], r8
    mov qword ptr [rax + 72], r9
    mov qword ptr [rax + 80], r10
    mov qword ptr [rax + 88], r11
    mov qword ptr [rax + 96], r12
    mov qword ptr [rax + 104], r13
    mov qword ptr [rax + 112], r14
    mov qword ptr [rax + 120], r15
    movabs rsp, STACK_TOP
    pushfq
    pop rbx
    mov qword ptr [rax + R_RFLAGS], rbx
    cld
    stmxcsr dword ptr [rax + R_MXCSR]
    fnstenv [rax + R_FPENV]
    movabs rbx, INBUF
    test qword ptr [rbx + H_FLAGS], F_AVX
    jz store_xmm
    vmovdqu ymmword ptr [rax + R_YMM], ymm0
    vmovdqu ymmword ptr [rax + R_YMM + 32], ymm1
    vmovdqu ymmword ptr [rax + R_YMM + 64], ymm2
    vmovdqu ymmword ptr [rax + R_YMM + 96], ymm3
    vmovdqu ymmword ptr [rax + R_YMM + 128], ymm4
    vmovdqu ymmword ptr [rax + R_YMM + 160], ymm5
    vmovdqu ymmword ptr [rax + R_YMM + 192], ymm6
    vmovdqu ymmword ptr [rax + R_YMM + 224], ymm7
    vmovdqu ymmword ptr [rax + R_YMM + 256], ymm8
    vmovdqu ymmword ptr [rax + R_YMM + 288], ymm9
    vmovdqu ymmword ptr [rax + R_YMM + 320], ymm10
    vmovdqu ymmword ptr [rax + R_YMM + 352], ymm11
    vmovdqu ymmword ptr [rax + R_YMM + 384], ymm12
    vmovdqu ymmword ptr [rax + R_YMM + 416], ymm13
    vmovdqu ymmword ptr [rax + R_YMM + 448], ymm14
    vmovdqu ymmword ptr [rax + R_YMM + 480], ymm15
    jmp stored
store_xmm:
    movdqu xmmword ptr [rax + R_YMM], xmm0
    movdqu xmmword ptr [rax + R_YMM + 32], xmm1
    movdqu xmmword ptr [rax + R_YMM + 64], xmm2
    movdqu xmmword ptr [rax + R_YMM + 96], xmm3
    movdqu xmmword ptr [rax + R_YMM + 128], xmm4
    movdqu xmmword ptr [rax + R_YMM + 160], xmm5
    movdqu xmmword ptr [rax + R_YMM + 192], xmm6
    movdqu xmmword ptr [rax + R_YMM + 224], xmm7
    movdqu xmmword ptr [rax + R_YMM + 256], xmm8
    movdqu xmmword ptr [rax + R_YMM + 288], xmm9
    movdqu xmmword ptr [rax + R_YMM + 320], xmm10
    movdqu xmmword ptr [rax + R_YMM + 352], xmm11
    movdqu xmmword ptr [rax + R_YMM + 384], xmm12
    movdqu xmmword ptr [rax + R_YMM + 416], xmm13
    movdqu xmmword ptr [rax + R_YMM + 448], xmm14
    movdqu xmmword ptr [rax + R_YMM + 480], xmm15
stored:
    movabs rbx, SHARED
    mov qword ptr [rbx + S_STATUS], ST_RETURNED
    call copy_pages
    mov qword ptr [rbx + S_COMPLETE], 1
    ud2                             ; SIGILL: the handler sees the status and ends the child

; --- faults: handler(signo = rdi, siginfo = rsi, ucontext = rdx), on the alternate stack ----------
handler:
    movabs rbx, SHARED
    cmp qword ptr [rbx + S_STATUS], 0
    jne die
    mov qword ptr [rbx + S_SIGNO], rdi
    movsxd rax, dword ptr [rsi + 8]
    mov qword ptr [rbx + S_CODE], rax
    mov rax, qword ptr [rsi + 16]   ; si_addr (SIGSYS: the address after the system call)
    mov qword ptr [rbx + S_ADDR], rax
    mov eax, dword ptr [rsi + 24]   ; SIGSYS: si_syscall
    mov qword ptr [rbx + S_SYSNR], rax
    mov rax, qword ptr [rdx + 168]  ; uc_mcontext.gregs[REG_RIP]
    mov qword ptr [rbx + S_PC], rax
    mov qword ptr [rbx + S_STATUS], ST_SIGNAL
    cld
    call copy_pages
    mov qword ptr [rbx + S_COMPLETE], 1
die:
    ud2                             ; every signal is blocked in the handler: the kernel kills us

; copy_pages: every map's final bytes, in table order, to SHARED + PAGE (clobbers rcx rsi rdi r8-r10)
copy_pages:
    movabs r8, INBUF
    mov r9, qword ptr [r8 + H_NMAPS]
    lea r10, [r8 + TABLE]
    movabs rdi, SHARED
    add rdi, PAGE
copy_next:
    test r9, r9
    jz copy_done
    mov rsi, qword ptr [r10]
    mov rcx, qword ptr [r10 + 8]
    rep movsb
    add r10, 32
    dec r9
    jmp copy_next
copy_done:
    ret

; --- constants ------------------------------------------------------------------------------
fault_signals:
    .byte 4, 5, 7, 8, 11, 31, 0     ; SIGILL SIGTRAP SIGBUS SIGFPE SIGSEGV SIGSYS
.align 8
deny_all:                           ; struct sock_fprog {1, filter}
    .quad 1
    .quad deny_filter
deny_filter:                        ; BPF_RET | BPF_K, SECCOMP_RET_TRAP
    .short 6
    .byte 0, 0
    .long 0x00030000

; exports: the last word is the landing address, read by verifier/oracle/runner.py
.align 3
exports:
    .quad landing
