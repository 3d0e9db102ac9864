; max — Maximum of two signed integers.
(set-info :nverify-signature "int32_t max(int32_t x, int32_t y)")
(define-fun post () Bool
  (= ret (ite (bvsge x y) x y)))
