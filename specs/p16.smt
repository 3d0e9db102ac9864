; p16 — Maximum of two unsigned integers (Gulwani et al.'s p16 compares unsigned).
(set-info :nverify-signature "uint32_t p16(uint32_t x, uint32_t y)")
(define-fun post () Bool
  (= ret (ite (bvuge x y) x y)))
