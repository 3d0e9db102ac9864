; strnlen — Length of the string in s, looking at no more than n (at most 16) bytes:
; the index of the first zero byte, or n when the first n bytes hold none.
(set-info :nverify-signature "size_t strnlen(const uint8_t s[n], size_t n)")
(define-fun pre () Bool (bvule n #x0000000000000010))
(define-fun post () Bool
  (and (bvule ret n)
       (forall ((i (_ BitVec 64))) (=> (bvult i ret) (distinct (select s i) #x00)))
       (or (= ret n) (= (select s ret) #x00))))
