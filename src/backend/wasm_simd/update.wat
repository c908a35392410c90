;; The elementwise parts of a data-parallel optimizer step (src/train/data_parallel/update.ts), float32,
;; 128-bit SIMD, over a shared memory that holds the run's weights, gradients, moments and EMA:
;;
;;   axpy_f32   y = a * x            ($init = 1: the first replica's gradient)
;;              y = y + a * x        ($init = 0: each further replica's)
;;   ema_f32    s = s * d + p * omd  (ModelEma's composite, the same float32 operations in its order)
;;
;; Byte offsets of n floats in the imported memory; the last n % 4 run scalar.
(module
  (import "env" "memory" (memory 1))
  (func (export "axpy_f32") (param $y i32) (param $x i32) (param $n i32) (param $a f32) (param $init i32)
    (local $i i32) (local $end i32) (local $n4 i32) (local $av v128)
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    (local.set $n4 (i32.and (local.get $end) (i32.const -16)))
    (local.set $av (f32x4.splat (local.get $a)))
    (local.set $i (i32.const 0))
    (if (local.get $init)
      (then
        (block $done (loop $next
          (br_if $done (i32.ge_u (local.get $i) (local.get $n4)))
          (v128.store (i32.add (local.get $y) (local.get $i))
            (f32x4.mul (v128.load (i32.add (local.get $x) (local.get $i))) (local.get $av)))
          (local.set $i (i32.add (local.get $i) (i32.const 16)))
          (br $next)))
        (block $tdone (loop $tnext
          (br_if $tdone (i32.ge_u (local.get $i) (local.get $end)))
          (f32.store (i32.add (local.get $y) (local.get $i))
            (f32.mul (f32.load (i32.add (local.get $x) (local.get $i))) (local.get $a)))
          (local.set $i (i32.add (local.get $i) (i32.const 4)))
          (br $tnext))))
      (else
        (block $done (loop $next
          (br_if $done (i32.ge_u (local.get $i) (local.get $n4)))
          (v128.store (i32.add (local.get $y) (local.get $i))
            (f32x4.add (v128.load (i32.add (local.get $y) (local.get $i)))
              (f32x4.mul (v128.load (i32.add (local.get $x) (local.get $i))) (local.get $av))))
          (local.set $i (i32.add (local.get $i) (i32.const 16)))
          (br $next)))
        (block $tdone (loop $tnext
          (br_if $tdone (i32.ge_u (local.get $i) (local.get $end)))
          (f32.store (i32.add (local.get $y) (local.get $i))
            (f32.add (f32.load (i32.add (local.get $y) (local.get $i)))
              (f32.mul (f32.load (i32.add (local.get $x) (local.get $i))) (local.get $a))))
          (local.set $i (i32.add (local.get $i) (i32.const 4)))
          (br $tnext))))))
  (func (export "ema_f32") (param $s i32) (param $p i32) (param $n i32) (param $d f32) (param $omd f32)
    (local $i i32) (local $end i32) (local $n4 i32)
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    (local.set $n4 (i32.and (local.get $end) (i32.const -16)))
    (local.set $i (i32.const 0))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $n4)))
      (v128.store (i32.add (local.get $s) (local.get $i))
        (f32x4.add
          (f32x4.mul (v128.load (i32.add (local.get $s) (local.get $i))) (f32x4.splat (local.get $d)))
          (f32x4.mul (v128.load (i32.add (local.get $p) (local.get $i))) (f32x4.splat (local.get $omd)))))
      (local.set $i (i32.add (local.get $i) (i32.const 16)))
      (br $next)))
    (block $tdone (loop $tnext
      (br_if $tdone (i32.ge_u (local.get $i) (local.get $end)))
      (f32.store (i32.add (local.get $s) (local.get $i))
        (f32.add
          (f32.mul (f32.load (i32.add (local.get $s) (local.get $i))) (local.get $d))
          (f32.mul (f32.load (i32.add (local.get $p) (local.get $i))) (local.get $omd))))
      (local.set $i (i32.add (local.get $i) (i32.const 4)))
      (br $tnext)))
  )
)
