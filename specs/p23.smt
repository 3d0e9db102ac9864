; p23 — Population count: the number of 1-bits of x.
(set-info :nverify-signature "uint32_t p23(uint32_t x)")
(define-fun bit ((v (_ BitVec 32)) (i (_ BitVec 32))) (_ BitVec 32) (bvand (bvlshr v i) #x00000001))
(define-fun pop ((v (_ BitVec 32))) (_ BitVec 32)
  (bvadd (bit v #x00000000) (bit v #x00000001) (bit v #x00000002) (bit v #x00000003) (bit v #x00000004) (bit v #x00000005) (bit v #x00000006) (bit v #x00000007) (bit v #x00000008) (bit v #x00000009) (bit v #x0000000a) (bit v #x0000000b) (bit v #x0000000c) (bit v #x0000000d) (bit v #x0000000e) (bit v #x0000000f) (bit v #x00000010) (bit v #x00000011) (bit v #x00000012) (bit v #x00000013) (bit v #x00000014) (bit v #x00000015) (bit v #x00000016) (bit v #x00000017) (bit v #x00000018) (bit v #x00000019) (bit v #x0000001a) (bit v #x0000001b) (bit v #x0000001c) (bit v #x0000001d) (bit v #x0000001e) (bit v #x0000001f)))
(define-fun post () Bool
  (= ret (pop x)))
