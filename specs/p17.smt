; p17 — Turn off the rightmost contiguous run of 1-bits.
; The run starts at the lowest 1-bit (low) and ends below the lowest 0-bit above it (z);
; z is 0 when the run reaches bit 31, and everything is 0 when x is 0.
(set-info :nverify-signature "uint32_t p17(uint32_t x)")
(define-fun lowbit ((v (_ BitVec 32))) (_ BitVec 32) (bvand v (bvneg v)))  ; 0 when v is 0
(define-fun post () Bool
  (let ((low (lowbit x)))
    (let ((z (lowbit (bvnot (bvor x (bvsub low #x00000001))))))
      (= ret (bvand x (bvnot (bvand (bvsub z #x00000001) (bvnot (bvsub low #x00000001)))))))))
