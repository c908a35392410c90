;; Column sums, float32, 128-bit SIMD:   y[c] = sum over r of x[r, c]      (x: [rows, C], C % 4 == 0)
;;
;; The bias gradient of a Linear layer (db = sum of dy over the pixels). Rows are added in order into
;; y, which stays in cache; x is read once, contiguously. Byte offsets in the imported memory (the
;; TF.js wasm heap); $acc = 1 adds to y instead of overwriting it.
(module
  (import "env" "memory" (memory 1))
  (func (export "colsum_f32") (param $x i32) (param $y i32) (param $rows i32) (param $c i32) (param $acc i32)
    (local $cb i32) (local $i i32) (local $end i32)
    (local.set $cb (i32.shl (local.get $c) (i32.const 2)))
    (if (i32.eqz (local.get $acc))
      (then (memory.fill (local.get $y) (i32.const 0) (local.get $cb))))
    (local.set $end (i32.add (local.get $x) (i32.mul (local.get $rows) (local.get $cb))))
    (block $done (loop $row
      (br_if $done (i32.ge_u (local.get $x) (local.get $end)))
      (local.set $i (i32.const 0))
      (block $c_done (loop $col
        (br_if $c_done (i32.ge_u (local.get $i) (local.get $cb)))
        (v128.store (i32.add (local.get $y) (local.get $i))
          (f32x4.add (v128.load (i32.add (local.get $y) (local.get $i))) (v128.load (i32.add (local.get $x) (local.get $i)))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $col)))
      (local.set $x (i32.add (local.get $x) (local.get $cb)))
      (br $row)))
  )
)
