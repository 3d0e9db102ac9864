; p01 — Turn off the rightmost 1-bit.
(set-info :nverify-signature "uint32_t p01(uint32_t x)")
(define-fun post () Bool
  (= ret (bvand x (bvsub x #x00000001))))
