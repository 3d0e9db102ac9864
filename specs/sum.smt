; sum — Wrapping sum of the first n (at most 8) unsigned 32-bit elements of p.
(set-info :nverify-signature "uint32_t sum(const uint32_t p[n], size_t n)")
(define-fun pre () Bool (bvule n #x0000000000000008))
; element i when it exists, 0 otherwise
(define-fun e ((i (_ BitVec 64))) (_ BitVec 32) (ite (bvult i n) (select p i) #x00000000))
(define-fun post () Bool
  (= ret (bvadd (e (_ bv0 64)) (e (_ bv1 64)) (e (_ bv2 64)) (e (_ bv3 64))
                (e (_ bv4 64)) (e (_ bv5 64)) (e (_ bv6 64)) (e (_ bv7 64)))))
