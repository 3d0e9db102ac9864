; p22 — Parity of x: 1 when it has an odd number of 1-bits.
; An odd number of 1-bits is exactly when the exclusive-or of all 32 bits is 1.
(set-info :nverify-signature "uint32_t p22(uint32_t x)")
(define-fun post () Bool
  (= ret ((_ zero_extend 31) (bvxor ((_ extract 0 0) x) ((_ extract 1 1) x) ((_ extract 2 2) x) ((_ extract 3 3) x) ((_ extract 4 4) x) ((_ extract 5 5) x) ((_ extract 6 6) x) ((_ extract 7 7) x) ((_ extract 8 8) x) ((_ extract 9 9) x) ((_ extract 10 10) x) ((_ extract 11 11) x) ((_ extract 12 12) x) ((_ extract 13 13) x) ((_ extract 14 14) x) ((_ extract 15 15) x) ((_ extract 16 16) x) ((_ extract 17 17) x) ((_ extract 18 18) x) ((_ extract 19 19) x) ((_ extract 20 20) x) ((_ extract 21 21) x) ((_ extract 22 22) x) ((_ extract 23 23) x) ((_ extract 24 24) x) ((_ extract 25 25) x) ((_ extract 26 26) x) ((_ extract 27 27) x) ((_ extract 28 28) x) ((_ extract 29 29) x) ((_ extract 30 30) x) ((_ extract 31 31) x)))))
