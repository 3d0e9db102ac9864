; clamp — Clamp x into [lo, hi] (signed); callers guarantee lo <= hi.
(set-info :nverify-signature "int32_t clamp(int32_t x, int32_t lo, int32_t hi)")
(define-fun pre () Bool
  (bvsle lo hi))
(define-fun post () Bool
  (= ret (ite (bvslt x lo) lo (ite (bvsgt x hi) hi x))))
