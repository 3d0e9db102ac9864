; dot3 — Wrapping dot product of two vectors of 3 signed 32-bit integers.
(set-info :nverify-signature "int32_t dot3(const int32_t a[3], const int32_t b[3])")
(define-fun post () Bool
  (= ret (bvadd (bvmul a.0 b.0) (bvmul a.1 b.1) (bvmul a.2 b.2))))
