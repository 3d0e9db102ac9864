; p02 — Test whether x is of the form 2^n - 1: the result is zero exactly when it is (n = 0 … 32).
(set-info :nverify-signature "uint32_t p02(uint32_t x)")
(define-fun post () Bool
  (= (= ret #x00000000) (or (= x #x00000000) (= x #x00000001) (= x #x00000003) (= x #x00000007) (= x #x0000000f) (= x #x0000001f) (= x #x0000003f) (= x #x0000007f) (= x #x000000ff) (= x #x000001ff) (= x #x000003ff) (= x #x000007ff) (= x #x00000fff) (= x #x00001fff) (= x #x00003fff) (= x #x00007fff) (= x #x0000ffff) (= x #x0001ffff) (= x #x0003ffff) (= x #x0007ffff) (= x #x000fffff) (= x #x001fffff) (= x #x003fffff) (= x #x007fffff) (= x #x00ffffff) (= x #x01ffffff) (= x #x03ffffff) (= x #x07ffffff) (= x #x0fffffff) (= x #x1fffffff) (= x #x3fffffff) (= x #x7fffffff) (= x #xffffffff))))
