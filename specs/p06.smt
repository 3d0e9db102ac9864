; p06 — Turn on the rightmost 0-bit (x unchanged when it has none).
(set-info :nverify-signature "uint32_t p06(uint32_t x)")
(define-fun lowbit ((v (_ BitVec 32))) (_ BitVec 32) (bvand v (bvneg v)))  ; 0 when v is 0
(define-fun post () Bool
  (= ret (bvor x (lowbit (bvnot x)))))
