;; One AdamW update of one parameter tensor (src/train/adamw.ts), float32, 128-bit SIMD, in the
;; composite's exact operation order so that the result has the same bits:
;;
;;   m' = m * b1 + g * (1 - b1)
;;   v' = v * b2 + (g * g) * (1 - b2)
;;   p' = p * keep - (m' / (sqrt(v') / bc2 + eps)) * step       keep = 1 - lr * wd (1 without decay)
;;                                                               step = lr / (1 - b1^t), bc2 = sqrt(1 - b2^t)
;;
;; The constants arrive as the float32 values the composite's scalar tensors hold. One pass over
;; p, m, v, g instead of the composite's ~13 elementwise kernels (and their ~13 heap round trips).
;; p, m, v, g, p2, m2, v2: byte offsets of n floats in the imported memory; the last n % 4 run scalar.
(module
  (import "env" "memory" (memory 1))
  (func (export "adamw_f32")
    (param $p i32) (param $m i32) (param $v i32) (param $g i32) (param $p2 i32) (param $m2 i32) (param $v2 i32) (param $n i32)
    (param $b1 f32) (param $omb1 f32) (param $b2 f32) (param $omb2 f32) (param $keep f32) (param $bc2 f32) (param $eps f32) (param $step f32)
    (param $decay i32)
    (local $i i32) (local $end i32) (local $n4 i32)
    (local $gv v128) (local $mv v128) (local $vv v128) (local $pv v128)
    (local $gs f32) (local $ms f32) (local $vs f32) (local $ps f32)
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    (local.set $n4 (i32.and (local.get $end) (i32.const -16)))
    (local.set $i (i32.const 0))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $n4)))
      (local.set $gv (v128.load (i32.add (local.get $g) (local.get $i))))
      (local.set $mv (f32x4.add
        (f32x4.mul (v128.load (i32.add (local.get $m) (local.get $i))) (f32x4.splat (local.get $b1)))
        (f32x4.mul (local.get $gv) (f32x4.splat (local.get $omb1)))))
      (local.set $vv (f32x4.add
        (f32x4.mul (v128.load (i32.add (local.get $v) (local.get $i))) (f32x4.splat (local.get $b2)))
        (f32x4.mul (f32x4.mul (local.get $gv) (local.get $gv)) (f32x4.splat (local.get $omb2)))))
      (local.set $pv (v128.load (i32.add (local.get $p) (local.get $i))))
      (if (local.get $decay) (then (local.set $pv (f32x4.mul (local.get $pv) (f32x4.splat (local.get $keep))))))
      (v128.store (i32.add (local.get $m2) (local.get $i)) (local.get $mv))
      (v128.store (i32.add (local.get $v2) (local.get $i)) (local.get $vv))
      (v128.store (i32.add (local.get $p2) (local.get $i))
        (f32x4.sub (local.get $pv)
          (f32x4.mul
            (f32x4.div (local.get $mv)
              (f32x4.add (f32x4.div (f32x4.sqrt (local.get $vv)) (f32x4.splat (local.get $bc2))) (f32x4.splat (local.get $eps))))
            (f32x4.splat (local.get $step)))))
      (local.set $i (i32.add (local.get $i) (i32.const 16)))
      (br $next)))
    (block $tdone (loop $tnext
      (br_if $tdone (i32.ge_u (local.get $i) (local.get $end)))
      (local.set $gs (f32.load (i32.add (local.get $g) (local.get $i))))
      (local.set $ms (f32.add (f32.mul (f32.load (i32.add (local.get $m) (local.get $i))) (local.get $b1)) (f32.mul (local.get $gs) (local.get $omb1))))
      (local.set $vs (f32.add (f32.mul (f32.load (i32.add (local.get $v) (local.get $i))) (local.get $b2))
        (f32.mul (f32.mul (local.get $gs) (local.get $gs)) (local.get $omb2))))
      (local.set $ps (f32.load (i32.add (local.get $p) (local.get $i))))
      (if (local.get $decay) (then (local.set $ps (f32.mul (local.get $ps) (local.get $keep)))))
      (f32.store (i32.add (local.get $m2) (local.get $i)) (local.get $ms))
      (f32.store (i32.add (local.get $v2) (local.get $i)) (local.get $vs))
      (f32.store (i32.add (local.get $p2) (local.get $i))
        (f32.sub (local.get $ps)
          (f32.mul (f32.div (local.get $ms) (f32.add (f32.div (f32.sqrt (local.get $vs)) (local.get $bc2)) (local.get $eps))) (local.get $step))))
      (local.set $i (i32.add (local.get $i) (i32.const 4)))
      (br $tnext)))
  )
)
