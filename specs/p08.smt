; p08 — Mask of the trailing zeros of x (all ones when x is 0).
(set-info :nverify-signature "uint32_t p08(uint32_t x)")
(define-fun lowbit ((v (_ BitVec 32))) (_ BitVec 32) (bvand v (bvneg v)))  ; 0 when v is 0
(define-fun post () Bool
  (= ret (ite (= x #x00000000) #xffffffff (bvsub (lowbit x) #x00000001))))
