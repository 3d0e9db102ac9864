; copy — Copy n (at most 16) bytes from src to dst; the arrays do not overlap.
(set-info :nverify-signature "void copy(uint8_t dst[n], const uint8_t src[n], size_t n)")
(define-fun pre () Bool (bvule n #x0000000000000010))
; every byte below n is src's; bytes past n are not dst's to touch (the memory-safety rules)
(define-fun post () Bool
  (forall ((i (_ BitVec 64))) (=> (bvult i n) (= (select dst.out i) (select src i)))))
