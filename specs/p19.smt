; p19 — Swap the bit field selected by m with the one k places above it.
(set-info :nverify-signature "uint32_t p19(uint32_t x, uint32_t m, uint32_t k)")
(define-fun pre () Bool
  (and (bvult k #x00000020) (= (bvand m (bvshl m k)) #x00000000) (= (bvlshr (bvshl m k) k) m)))
(define-fun post () Bool
  (= ret (bvor (bvand x (bvnot (bvor m (bvshl m k)))) (bvshl (bvand x m) k) (bvand (bvlshr x k) m))))
