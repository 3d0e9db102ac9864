; max8 — The largest of eight signed 32-bit integers.
(set-info :nverify-signature "int32_t max8(const int32_t p[8])")
(define-fun ge ((v (_ BitVec 32))) Bool
  (and (bvsge v p.0) (bvsge v p.1) (bvsge v p.2) (bvsge v p.3)
       (bvsge v p.4) (bvsge v p.5) (bvsge v p.6) (bvsge v p.7)))
(define-fun post () Bool
  (and (ge ret)
       (or (= ret p.0) (= ret p.1) (= ret p.2) (= ret p.3)
           (= ret p.4) (= ret p.5) (= ret p.6) (= ret p.7))))
