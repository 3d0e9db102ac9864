; p25 — High 32 bits of the 64-bit product of two unsigned integers (Hacker's Delight 8-2,
; the last benchmark of Gulwani et al.; its program multiplies 16-bit halves).
(set-info :nverify-signature "uint32_t p25(uint32_t x, uint32_t y)")
(define-fun post () Bool
  (= ret ((_ extract 63 32) (bvmul ((_ zero_extend 32) x) ((_ zero_extend 32) y)))))
