/* Loop fixtures for the loops/VLA issue: each function is the obvious C for its spec in specs/.
   Compiled at test time at -O0, -O2, -O3 (and -O3 -march=x86-64-v3), on both ISAs. */
#include <stddef.h>
#include <stdint.h>

uint32_t sum(const uint32_t *p, size_t n) {
    uint32_t s = 0;
    for (size_t i = 0; i < n; i++) s += p[i];
    return s;
}

void copy(uint8_t *dst, const uint8_t *src, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = src[i];
}

int32_t max8(const int32_t *p) {
    int32_t m = p[0];
    for (int i = 1; i < 8; i++) m = p[i] > m ? p[i] : m;
    return m;
}

size_t strnlen(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n && s[i] != 0) i++;
    return i;
}

int32_t dot(const int32_t *a, const int32_t *b, size_t n) {
    uint32_t s = 0;
    for (size_t i = 0; i < n; i++) s += (uint32_t)a[i] * (uint32_t)b[i];
    return (int32_t)s;
}
