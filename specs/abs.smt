; abs — Absolute value of a signed integer (INT32_MIN maps to itself).
(set-info :nverify-signature "int32_t abs(int32_t x)")
(define-fun post () Bool
  (= ret (ite (bvslt x #x00000000) (bvneg x) x)))
