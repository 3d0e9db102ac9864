; p07 — Isolate the rightmost 0-bit (0 when x has none).
(set-info :nverify-signature "uint32_t p07(uint32_t x)")
(define-fun lowbit ((v (_ BitVec 32))) (_ BitVec 32) (bvand v (bvneg v)))  ; 0 when v is 0
(define-fun post () Bool
  (= ret (lowbit (bvnot x))))
