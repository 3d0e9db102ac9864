; p13 — Sign of a signed integer: -1, 0 or 1.
(set-info :nverify-signature "int32_t p13(int32_t x)")
(define-fun post () Bool
  (= ret (ite (bvslt x #x00000000) #xffffffff (ite (= x #x00000000) #x00000000 #x00000001))))
