; p21 — Cycle through three distinct values: a -> b -> c -> a.
(set-info :nverify-signature "uint32_t p21(uint32_t x, uint32_t a, uint32_t b, uint32_t c)")
(define-fun pre () Bool
  (and (distinct a b c) (or (= x a) (= x b) (= x c))))
(define-fun post () Bool
  (= ret (ite (= x a) b (ite (= x b) c a))))
