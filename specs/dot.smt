; dot — Wrapping dot product of the first n (at most 4) signed 32-bit elements of a and b.
(set-info :nverify-signature "int32_t dot(const int32_t a[n], const int32_t b[n], size_t n)")
(define-fun pre () Bool (bvule n #x0000000000000004))
(define-fun t ((i (_ BitVec 64))) (_ BitVec 32) (ite (bvult i n) (bvmul (select a i) (select b i)) #x00000000))
(define-fun post () Bool
  (= ret (bvadd (t (_ bv0 64)) (t (_ bv1 64)) (t (_ bv2 64)) (t (_ bv3 64)))))
