;; Layer scale and residual in one pass (the end of a ConvNeXt V1 block, in eval), float32, 128-bit SIMD:
;;
;;   out[r, c] = x[r, c] + gamma[c] * y[r, c]        ($gamma 0: out = x + y)
;;
;; x (the block's input), y (its branch), out: [rows, C] (NHWC flattened); gamma: [C]; byte offsets
;; in the imported memory (the TF.js wasm heap); C % 4 == 0; out may equal x or y. The product is
;; rounded before the sum (no fma variant, unlike gemm.wat's), so the result has the bits of
;; tf.add(x, tf.mul(y, gamma)): three streams instead of the two kernels' six. Four vectors at a
;; time, then one; split.ts cuts a call by rows.
(module
  (import "env" "memory" (memory 1))
  (func (export "scaled_residual_f32")
    (param $x i32) (param $y i32) (param $g i32) (param $out i32) (param $rows i32) (param $c i32)
    (local $cb i32) (local $end i32) (local $i i32)
    (local.set $cb (i32.shl (local.get $c) (i32.const 2)))
    (local.set $end (i32.add (local.get $x) (i32.mul (local.get $rows) (local.get $cb))))
    (if (i32.eqz (local.get $g))
      (then
        ;; x + y over rows * C floats
        (block $sum4_done (loop $sum4
          (br_if $sum4_done (i32.gt_u (i32.add (local.get $x) (i32.const 64)) (local.get $end)))
          (v128.store offset=0 (local.get $out) (f32x4.add (v128.load offset=0 (local.get $x)) (v128.load offset=0 (local.get $y))))
          (v128.store offset=16 (local.get $out) (f32x4.add (v128.load offset=16 (local.get $x)) (v128.load offset=16 (local.get $y))))
          (v128.store offset=32 (local.get $out) (f32x4.add (v128.load offset=32 (local.get $x)) (v128.load offset=32 (local.get $y))))
          (v128.store offset=48 (local.get $out) (f32x4.add (v128.load offset=48 (local.get $x)) (v128.load offset=48 (local.get $y))))
          (local.set $x (i32.add (local.get $x) (i32.const 64)))
          (local.set $y (i32.add (local.get $y) (i32.const 64)))
          (local.set $out (i32.add (local.get $out) (i32.const 64)))
          (br $sum4)))
        (block $sum_done (loop $sum
          (br_if $sum_done (i32.ge_u (local.get $x) (local.get $end)))
          (v128.store (local.get $out) (f32x4.add (v128.load (local.get $x)) (v128.load (local.get $y))))
          (local.set $x (i32.add (local.get $x) (i32.const 16)))
          (local.set $y (i32.add (local.get $y) (i32.const 16)))
          (local.set $out (i32.add (local.get $out) (i32.const 16)))
          (br $sum)))
        (return)))
    ;; one row at a time, gamma from its start
    (block $rows_done (loop $row
      (br_if $rows_done (i32.ge_u (local.get $x) (local.get $end)))
      (local.set $i (i32.const 0))
      (block $c4_done (loop $c4
        (br_if $c4_done (i32.gt_u (i32.add (local.get $i) (i32.const 64)) (local.get $cb)))
        (v128.store offset=0 (i32.add (local.get $out) (local.get $i))
          (f32x4.add (v128.load offset=0 (i32.add (local.get $x) (local.get $i)))
            (f32x4.mul (v128.load offset=0 (i32.add (local.get $y) (local.get $i))) (v128.load offset=0 (i32.add (local.get $g) (local.get $i))))))
        (v128.store offset=16 (i32.add (local.get $out) (local.get $i))
          (f32x4.add (v128.load offset=16 (i32.add (local.get $x) (local.get $i)))
            (f32x4.mul (v128.load offset=16 (i32.add (local.get $y) (local.get $i))) (v128.load offset=16 (i32.add (local.get $g) (local.get $i))))))
        (v128.store offset=32 (i32.add (local.get $out) (local.get $i))
          (f32x4.add (v128.load offset=32 (i32.add (local.get $x) (local.get $i)))
            (f32x4.mul (v128.load offset=32 (i32.add (local.get $y) (local.get $i))) (v128.load offset=32 (i32.add (local.get $g) (local.get $i))))))
        (v128.store offset=48 (i32.add (local.get $out) (local.get $i))
          (f32x4.add (v128.load offset=48 (i32.add (local.get $x) (local.get $i)))
            (f32x4.mul (v128.load offset=48 (i32.add (local.get $y) (local.get $i))) (v128.load offset=48 (i32.add (local.get $g) (local.get $i))))))
        (local.set $i (i32.add (local.get $i) (i32.const 64)))
        (br $c4)))
      (block $c1_done (loop $c1
        (br_if $c1_done (i32.ge_u (local.get $i) (local.get $cb)))
        (v128.store (i32.add (local.get $out) (local.get $i))
          (f32x4.add (v128.load (i32.add (local.get $x) (local.get $i)))
            (f32x4.mul (v128.load (i32.add (local.get $y) (local.get $i))) (v128.load (i32.add (local.get $g) (local.get $i))))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $c1)))
      (local.set $x (i32.add (local.get $x) (local.get $cb)))
      (local.set $y (i32.add (local.get $y) (local.get $cb)))
      (local.set $out (i32.add (local.get $out) (local.get $cb)))
      (br $row)))
  )
)
