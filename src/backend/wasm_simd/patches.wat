;; Non-overlapping s x s patches of an NHWC image as the rows of a matrix, and back: the im2col of
;; a convolution whose stride equals its kernel ('valid'; ConvNeXt's 4x4/4 stem and 2x2/2
;; downsampling), where each patch row is s runs of s*C contiguous floats.
;;
;;   patches[(n, oy, ox), (ky, kx, c)] = x[n, oy*s + ky, ox*s + kx, c]       x: [N, H, W, C]
;;
;; patches_f32 gathers (x -> patches); unpatches_f32 scatters back (patches -> x), first zeroing x
;; when the patches do not cover it (H > OH*s or W > OW*s: floor semantics leave rows unused).
;; Byte offsets in the imported memory (the TF.js wasm heap); memory.copy moves each run.
(module
  (import "env" "memory" (memory 1))
  (func $walk (param $x i32) (param $p i32) (param $n i32) (param $oh i32) (param $ow i32) (param $s i32) (param $c i32)
    (param $h i32) (param $w i32) (param $back i32)
    (local $run i32) (local $rs i32) (local $img i32) (local $oy i32) (local $ky i32) (local $ox i32) (local $src i32) (local $row i32)
    (local.set $run (i32.shl (i32.mul (local.get $s) (local.get $c)) (i32.const 2)))
    (local.set $rs (i32.shl (i32.mul (local.get $w) (local.get $c)) (i32.const 2)))
    (local.set $img (i32.const 0))
    (block $img_done (loop $img_loop
      (br_if $img_done (i32.ge_u (local.get $img) (local.get $n)))
      (local.set $oy (i32.const 0))
      (block $oy_done (loop $oy_loop
        (br_if $oy_done (i32.ge_u (local.get $oy) (local.get $oh)))
        ;; first patch row of this output row: (img, oy, 0)
        (local.set $row (i32.add (local.get $p)
          (i32.mul (i32.mul (i32.add (i32.mul (local.get $img) (local.get $oh)) (local.get $oy)) (local.get $ow))
            (i32.mul (local.get $run) (local.get $s)))))
        (local.set $ky (i32.const 0))
        (block $ky_done (loop $ky_loop
          (br_if $ky_done (i32.ge_u (local.get $ky) (local.get $s)))
          (local.set $src (i32.add (local.get $x)
            (i32.mul (i32.add (i32.mul (local.get $img) (local.get $h)) (i32.add (i32.mul (local.get $oy) (local.get $s)) (local.get $ky))) (local.get $rs))))
          (local.set $ox (i32.const 0))
          (block $ox_done (loop $ox_loop
            (br_if $ox_done (i32.ge_u (local.get $ox) (local.get $ow)))
            (if (local.get $back)
              (then (memory.copy
                (i32.add (local.get $src) (i32.mul (local.get $ox) (local.get $run)))
                (i32.add (i32.add (local.get $row) (i32.mul (local.get $ox) (i32.mul (local.get $run) (local.get $s)))) (i32.mul (local.get $ky) (local.get $run)))
                (local.get $run)))
              (else (memory.copy
                (i32.add (i32.add (local.get $row) (i32.mul (local.get $ox) (i32.mul (local.get $run) (local.get $s)))) (i32.mul (local.get $ky) (local.get $run)))
                (i32.add (local.get $src) (i32.mul (local.get $ox) (local.get $run)))
                (local.get $run))))
            (local.set $ox (i32.add (local.get $ox) (i32.const 1)))
            (br $ox_loop)))
          (local.set $ky (i32.add (local.get $ky) (i32.const 1)))
          (br $ky_loop)))
        (local.set $oy (i32.add (local.get $oy) (i32.const 1)))
        (br $oy_loop)))
      (local.set $img (i32.add (local.get $img) (i32.const 1)))
      (br $img_loop)))
  )
  (func (export "patches_f32") (param $x i32) (param $p i32) (param $n i32) (param $oh i32) (param $ow i32) (param $s i32) (param $c i32)
    (param $h i32) (param $w i32)
    (call $walk (local.get $x) (local.get $p) (local.get $n) (local.get $oh) (local.get $ow) (local.get $s) (local.get $c)
      (local.get $h) (local.get $w) (i32.const 0)))
  (func (export "unpatches_f32") (param $p i32) (param $x i32) (param $n i32) (param $oh i32) (param $ow i32) (param $s i32) (param $c i32)
    (param $h i32) (param $w i32)
    (if (i32.or (i32.ne (local.get $h) (i32.mul (local.get $oh) (local.get $s))) (i32.ne (local.get $w) (i32.mul (local.get $ow) (local.get $s))))
      (then (memory.fill (local.get $x) (i32.const 0)
        (i32.shl (i32.mul (i32.mul (local.get $n) (local.get $h)) (i32.mul (local.get $w) (local.get $c))) (i32.const 2)))))
    (call $walk (local.get $x) (local.get $p) (local.get $n) (local.get $oh) (local.get $ow) (local.get $s) (local.get $c)
      (local.get $h) (local.get $w) (i32.const 1)))
)
