; sort6 — sort 6 signed 32-bit integers in place, ascending.
; post: the output is sorted, and every input value occurs as often in the output as in
; the input (a permutation) — not "equals my sorting network".
(set-info :nverify-signature "void sort6(int32_t p[6])")
(define-fun c ((v (_ BitVec 32)) (w (_ BitVec 32))) (_ BitVec 8) (ite (= v w) #x01 #x00))
(define-fun n.in ((v (_ BitVec 32))) (_ BitVec 8) (bvadd (c v p.0) (c v p.1) (c v p.2) (c v p.3) (c v p.4) (c v p.5)))
(define-fun n.out ((v (_ BitVec 32))) (_ BitVec 8) (bvadd (c v p.0.out) (c v p.1.out) (c v p.2.out) (c v p.3.out) (c v p.4.out) (c v p.5.out)))
(define-fun post () Bool
  (and (bvsle p.0.out p.1.out) (bvsle p.1.out p.2.out) (bvsle p.2.out p.3.out) (bvsle p.3.out p.4.out) (bvsle p.4.out p.5.out)
       (= (n.in p.0) (n.out p.0)) (= (n.in p.1) (n.out p.1)) (= (n.in p.2) (n.out p.2)) (= (n.in p.3) (n.out p.3)) (= (n.in p.4) (n.out p.4)) (= (n.in p.5) (n.out p.5))))
