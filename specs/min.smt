; min — Minimum of two signed integers.
(set-info :nverify-signature "int32_t min(int32_t x, int32_t y)")
(define-fun post () Bool
  (= ret (ite (bvsle x y) x y)))
