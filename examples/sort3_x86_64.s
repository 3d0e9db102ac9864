# sort3 for x86-64 System V: sorts p[0..2] (int32) in place with a branch-free network.
# Assemble: nverify's tests do it with keystone; the shipped .bin is this text assembled.
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
ret
