; mulhu — High 32 bits of the 64-bit product of two unsigned integers.
(set-info :nverify-signature "uint32_t mulhu(uint32_t x, uint32_t y)")
(define-fun post () Bool
  (= ret ((_ extract 63 32) (bvmul ((_ zero_extend 32) x) ((_ zero_extend 32) y)))))
