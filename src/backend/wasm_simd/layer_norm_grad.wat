;; Gradient of LayerNorm over the last axis (layer_norm.wat), float32, 128-bit SIMD. Per row of C
;; channels, with xhat = (x - mean) * rstd and g = dy * w:
;;
;;   dx = rstd * (g - mean_c(g) - xhat * mean_c(g * xhat))
;;   dw += dy * xhat,   db += dy                      (summed over every row)
;;
;; The statistics are recomputed as the forward computes them (two passes: mean, then the biased
;; variance of the centred values), then one pass sums g and g * xhat and accumulates dw and db,
;; one pass writes dx: one kernel instead of the composite gradient's ~25 (src/layers/layer_norm.ts).
;; x, dy, dx: [rows, C]; w, dw, db: [C]; C % 4 == 0; byte offsets in the imported memory (the TF.js
;; wasm heap). dw and db are overwritten (zeroed first); dx may equal dy.
(module
  (import "env" "memory" (memory 1))
  (func $hsum (param $v v128) (result f32)
    (f32.add
      (f32.add (f32x4.extract_lane 0 (local.get $v)) (f32x4.extract_lane 1 (local.get $v)))
      (f32.add (f32x4.extract_lane 2 (local.get $v)) (f32x4.extract_lane 3 (local.get $v)))))
  (func (export "layer_norm_grad_f32")
    (param $x i32) (param $w i32) (param $dy i32) (param $dx i32) (param $dw i32) (param $db i32)
    (param $rows i32) (param $c i32) (param $eps f32)
    (local $row i32) (local $cb i32) (local $i i32) (local $acc v128) (local $acc2 v128) (local $d v128)
    (local $mean v128) (local $rstd v128) (local $xh v128) (local $g v128) (local $dyv v128)
    (local $mg v128) (local $mgx v128) (local $m f32) (local $invc f32)
    (local.set $cb (i32.shl (local.get $c) (i32.const 2)))
    (local.set $invc (f32.div (f32.const 1) (f32.convert_i32_u (local.get $c))))
    (memory.fill (local.get $dw) (i32.const 0) (local.get $cb))
    (memory.fill (local.get $db) (i32.const 0) (local.get $cb))
    (local.set $row (i32.const 0))
    (block $rows_done (loop $next_row
      (br_if $rows_done (i32.ge_u (local.get $row) (local.get $rows)))
      ;; mean (as layer_norm.wat: sum, then divide by C)
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
      ;; sums of g and g * xhat over the row; dw += dy * xhat, db += dy
      (local.set $acc (v128.const f32x4 0 0 0 0))
      (local.set $acc2 (v128.const f32x4 0 0 0 0))
      (local.set $i (i32.const 0))
      (block $g_done (loop $gl
        (br_if $g_done (i32.ge_u (local.get $i) (local.get $cb)))
        (local.set $xh (f32x4.mul (f32x4.sub (v128.load (i32.add (local.get $x) (local.get $i))) (local.get $mean)) (local.get $rstd)))
        (local.set $dyv (v128.load (i32.add (local.get $dy) (local.get $i))))
        (local.set $g (f32x4.mul (local.get $dyv) (v128.load (i32.add (local.get $w) (local.get $i)))))
        (local.set $acc (f32x4.add (local.get $acc) (local.get $g)))
        (local.set $acc2 (f32x4.add (local.get $acc2) (f32x4.mul (local.get $g) (local.get $xh))))
        (v128.store (i32.add (local.get $dw) (local.get $i))
          (f32x4.add (v128.load (i32.add (local.get $dw) (local.get $i))) (f32x4.mul (local.get $dyv) (local.get $xh))))
        (v128.store (i32.add (local.get $db) (local.get $i))
          (f32x4.add (v128.load (i32.add (local.get $db) (local.get $i))) (local.get $dyv)))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $gl)))
      (local.set $mg (f32x4.splat (f32.mul (call $hsum (local.get $acc)) (local.get $invc))))
      (local.set $mgx (f32x4.splat (f32.mul (call $hsum (local.get $acc2)) (local.get $invc))))
      ;; dx
      (local.set $i (i32.const 0))
      (block $x_done (loop $xl
        (br_if $x_done (i32.ge_u (local.get $i) (local.get $cb)))
        (local.set $xh (f32x4.mul (f32x4.sub (v128.load (i32.add (local.get $x) (local.get $i))) (local.get $mean)) (local.get $rstd)))
        (local.set $g (f32x4.mul (v128.load (i32.add (local.get $dy) (local.get $i))) (v128.load (i32.add (local.get $w) (local.get $i)))))
        (v128.store (i32.add (local.get $dx) (local.get $i))
          (f32x4.mul (local.get $rstd)
            (f32x4.sub (f32x4.sub (local.get $g) (local.get $mg)) (f32x4.mul (local.get $xh) (local.get $mgx)))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $xl)))
      (local.set $x (i32.add (local.get $x) (local.get $cb)))
      (local.set $dy (i32.add (local.get $dy) (local.get $cb)))
      (local.set $dx (i32.add (local.get $dx) (local.get $cb)))
      (local.set $row (i32.add (local.get $row) (i32.const 1)))
      (br $next_row)))
  )
)
