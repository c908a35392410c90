;; LayerNorm over the last axis, float32, 128-bit SIMD (PyTorch nn.LayerNorm: biased variance,
;; eps inside the square root), one row of C channels at a time:
;;
;;   mean = sum(x) / C;  var = sum((x - mean)^2) / C;  y = (x - mean) / sqrt(var + eps) * w + b
;;
;; x, y: [rows, C] (NHWC flattened); w, b: [C]; byte offsets in the imported memory (the TF.js
;; wasm heap); C % 4 == 0; y may equal x. Two passes for the statistics, as the composite op.
(module
  (import "env" "memory" (memory 1))
  (func $hsum (param $v v128) (result f32)
    (f32.add
      (f32.add (f32x4.extract_lane 0 (local.get $v)) (f32x4.extract_lane 1 (local.get $v)))
      (f32.add (f32x4.extract_lane 2 (local.get $v)) (f32x4.extract_lane 3 (local.get $v)))))
  (func (export "layer_norm_f32")
    (param $x i32) (param $w i32) (param $b i32) (param $y i32) (param $rows i32) (param $c i32) (param $eps f32)
    (local $row i32) (local $cb i32) (local $i i32) (local $acc v128) (local $d v128) (local $mean v128) (local $rstd v128)
    (local $m f32)
    (local.set $cb (i32.shl (local.get $c) (i32.const 2)))
    (local.set $row (i32.const 0))
    (block $rows_done (loop $next_row
      (br_if $rows_done (i32.ge_u (local.get $row) (local.get $rows)))
      ;; mean
      (local.set $acc (v128.const f32x4 0 0 0 0))
      (local.set $i (i32.const 0))
      (block $s_done (loop $s
        (br_if $s_done (i32.ge_u (local.get $i) (local.get $cb)))
        (local.set $acc (f32x4.add (local.get $acc) (v128.load (i32.add (local.get $x) (local.get $i)))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $s)))
      (local.set $m (f32.div (call $hsum (local.get $acc)) (f32.convert_i32_u (local.get $c))))
      (local.set $mean (f32x4.splat (local.get $m)))
      ;; variance of the centred values
      (local.set $acc (v128.const f32x4 0 0 0 0))
      (local.set $i (i32.const 0))
      (block $v_done (loop $v
        (br_if $v_done (i32.ge_u (local.get $i) (local.get $cb)))
        (local.set $d (f32x4.sub (v128.load (i32.add (local.get $x) (local.get $i))) (local.get $mean)))
        (local.set $acc (f32x4.add (local.get $acc) (f32x4.mul (local.get $d) (local.get $d))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $v)))
      (local.set $rstd (f32x4.splat (f32.div (f32.const 1)
        (f32.sqrt (f32.add (f32.div (call $hsum (local.get $acc)) (f32.convert_i32_u (local.get $c))) (local.get $eps))))))
      ;; normalise, scale, shift
      (local.set $i (i32.const 0))
      (block $n_done (loop $n
        (br_if $n_done (i32.ge_u (local.get $i) (local.get $cb)))
        (v128.store (i32.add (local.get $y) (local.get $i))
          (f32x4.add
            (f32x4.mul
              (f32x4.mul (f32x4.sub (v128.load (i32.add (local.get $x) (local.get $i))) (local.get $mean)) (local.get $rstd))
              (v128.load (i32.add (local.get $w) (local.get $i))))
            (v128.load (i32.add (local.get $b) (local.get $i)))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $n)))
      (local.set $x (i32.add (local.get $x) (local.get $cb)))
      (local.set $y (i32.add (local.get $y) (local.get $cb)))
      (local.set $row (i32.add (local.get $row) (i32.const 1)))
      (br $next_row)))
  )
)
