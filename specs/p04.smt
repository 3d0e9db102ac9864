; p04 — Mask of the rightmost 1-bit and the zeros below it (all ones when x is 0).
(set-info :nverify-signature "uint32_t p04(uint32_t x)")
(define-fun lowbit ((v (_ BitVec 32))) (_ BitVec 32) (bvand v (bvneg v)))  ; 0 when v is 0
(define-fun post () Bool
  (= ret (ite (= x #x00000000) #xffffffff (bvor (lowbit x) (bvsub (lowbit x) #x00000001)))))
