; bswap32 — Reverse the byte order of x.
(set-info :nverify-signature "uint32_t bswap32(uint32_t x)")
(define-fun post () Bool
  (= ret (concat ((_ extract 7 0) x) ((_ extract 15 8) x) ((_ extract 23 16) x) ((_ extract 31 24) x))))
