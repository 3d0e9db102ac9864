/* Independent C implementations of every spec in specs/, written from each function's
 * meaning (loops and comparisons where that is clearest), not from the bit tricks the
 * hand-written assembly uses. Compiled at test time for both ISAs. */
#include <stdint.h>

static inline __attribute__((always_inline)) uint32_t pop(uint32_t x) { uint32_t n = 0; for (int i = 0; i < 32; i++) n += (x >> i) & 1; return n; }
static inline __attribute__((always_inline)) uint32_t nlz(uint32_t x) {
  uint32_t n = 0, seen = 0;   /* count the zeros above the highest 1-bit */
  for (int i = 31; i >= 0; i--) { seen |= (x >> i) & 1; n += seen ^ 1; }
  return n;
}

uint32_t p01(uint32_t x) { return x & (x - 1); }
uint32_t p02(uint32_t x) { return x & (x + 1); }
uint32_t p03(uint32_t x) { for (int i = 0; i < 32; i++) if (x & (1u << i)) return 1u << i; return 0; }
uint32_t p04(uint32_t x) { return x ^ (x - 1); }
uint32_t p05(uint32_t x) { return x | (x - 1); }
uint32_t p06(uint32_t x) { for (int i = 0; i < 32; i++) if (!(x & (1u << i))) return x | (1u << i); return x; }
uint32_t p07(uint32_t x) { return ~x & (x + 1); }
uint32_t p08(uint32_t x) { return ~x & (x - 1); }
int32_t p09(int32_t x) { return x < 0 ? (int32_t)(0u - (uint32_t)x) : x; }
uint32_t p10(uint32_t x, uint32_t y) { return nlz(x) == nlz(y); }
uint32_t p11(uint32_t x, uint32_t y) { return nlz(x) < nlz(y); }
uint32_t p12(uint32_t x, uint32_t y) { return nlz(x) <= nlz(y); }
int32_t p13(int32_t x) { return x < 0 ? -1 : x > 0; }
int32_t p14(int32_t x, int32_t y) { int64_t s = (int64_t)x + y; return (int32_t)(s >> 1); }
int32_t p15(int32_t x, int32_t y) { int64_t s = (int64_t)x + y + 1; return (int32_t)(s >> 1); }
uint32_t p16(uint32_t x, uint32_t y) { return x >= y ? x : y; }
uint32_t p17(uint32_t x) {
  int i = 0;
  while (i < 32 && !(x & (1u << i))) i++;        /* skip trailing zeros */
  while (i < 32 && (x & (1u << i))) x &= ~(1u << i++);   /* clear the run */
  return x;
}
uint32_t p18(uint32_t x) { return pop(x) == 1; }
uint32_t p19(uint32_t x, uint32_t m, uint32_t k) {
  uint32_t a = x & m, b = (x >> k) & m;
  return (x & ~(m | (m << k))) | (a << k) | b;
}
uint32_t p20(uint32_t x) {   /* Hacker's Delight 2-1 "snoob", with the division */
  uint32_t s = x & -x, r = x + s, ones = x ^ r;
  ones = (ones >> 2) / s;
  return r | ones;
}
uint32_t p21(uint32_t x, uint32_t a, uint32_t b, uint32_t c) { return x == a ? b : x == b ? c : a; }
uint32_t p22(uint32_t x) { return pop(x) & 1; }
uint32_t p23(uint32_t x) { return pop(x); }
uint32_t p24(uint32_t x) { uint32_t p = 1; while (p < x) p <<= 1; return p; }
uint32_t popcount(uint32_t x) { return pop(x); }
uint32_t bswap32(uint32_t x) { return (x >> 24) | ((x >> 8) & 0xff00) | ((x << 8) & 0xff0000) | (x << 24); }
int32_t clamp(int32_t x, int32_t lo, int32_t hi) { return x < lo ? lo : x > hi ? hi : x; }
uint32_t mulhu(uint32_t x, uint32_t y) { return (uint32_t)(((uint64_t)x * y) >> 32); }
int32_t min(int32_t x, int32_t y) { return x <= y ? x : y; }
int32_t max(int32_t x, int32_t y) { return x >= y ? x : y; }
int32_t abs(int32_t x) { return x < 0 ? (int32_t)(0u - (uint32_t)x) : x; }
void sort3(int32_t p[3]) {
  for (int i = 0; i < 3; i++) for (int j = 0; j + 1 < 3 - i; j++)
    if (p[j] > p[j + 1]) { int32_t t = p[j]; p[j] = p[j + 1]; p[j + 1] = t; }
}
void sort4(int32_t p[4]) {
  for (int i = 1; i < 4; i++) { int32_t v = p[i]; int j = i; while (j > 0 && p[j - 1] > v) { p[j] = p[j - 1]; j--; } p[j] = v; }
}
void sort5(int32_t p[5]) {
  for (int i = 0; i < 5; i++) for (int j = 0; j + 1 < 5 - i; j++)
    if (p[j] > p[j + 1]) { int32_t t = p[j]; p[j] = p[j + 1]; p[j + 1] = t; }
}
/* sort6-sort8: the sorting networks of tests/asm_library.py (gcc -O2: cmov/csel, no branch) */
#define CX(i, j) { int32_t a = p[i], b = p[j]; p[i] = a < b ? a : b; p[j] = a < b ? b : a; }
void sort6(int32_t p[6]) { CX(0,5) CX(1,3) CX(2,4) CX(1,2) CX(3,4) CX(0,3) CX(2,5) CX(0,1) CX(2,3) CX(4,5) CX(1,2) CX(3,4) }
void sort7(int32_t p[7]) {
  CX(0,6) CX(2,3) CX(4,5) CX(0,2) CX(1,4) CX(3,6) CX(0,1) CX(2,5) CX(3,4) CX(1,2) CX(4,6) CX(2,3) CX(4,5) CX(1,2)
  CX(3,4) CX(5,6)
}
void sort8(int32_t p[8]) {
  CX(0,2) CX(1,3) CX(4,6) CX(5,7) CX(0,4) CX(1,5) CX(2,6) CX(3,7) CX(0,1) CX(2,3) CX(4,5) CX(6,7) CX(2,4) CX(3,5)
  CX(1,4) CX(3,6) CX(1,2) CX(3,4) CX(5,6)
}
uint32_t p25(uint32_t x, uint32_t y) {   /* Hacker's Delight 8-2: the high product by 16-bit halves */
  uint32_t xl = x & 0xffff, xh = x >> 16, yl = y & 0xffff, yh = y >> 16;
  uint32_t t = xh * yl + ((xl * yl) >> 16), u = xl * yh + (t & 0xffff);
  return xh * yh + (t >> 16) + (u >> 16);
}
int32_t dot3(const int32_t a[3], const int32_t b[3]) {
  return (int32_t)((uint32_t)a[0] * (uint32_t)b[0] + (uint32_t)a[1] * (uint32_t)b[1] + (uint32_t)a[2] * (uint32_t)b[2]);
}
