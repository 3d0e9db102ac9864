; p14 — Floor of the average of two signed integers, without overflow.
(set-info :nverify-signature "int32_t p14(int32_t x, int32_t y)")
(define-fun post () Bool
  (= ret ((_ extract 31 0) (bvashr (bvadd ((_ sign_extend 1) x) ((_ sign_extend 1) y)) #b000000000000000000000000000000001))))
