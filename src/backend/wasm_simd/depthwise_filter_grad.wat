;; Gradient of the 7x7 depthwise convolution (depthwise_nhwc.wat) with respect to its filter, NHWC,
;; stride 1, 'same' zero padding, multiplier 1, float32, 128-bit SIMD:
;;
;;   dw[ky, kx, c] = sum over n, oy, ox of x[n, oy + ky - 3, ox + kx - 3, c] * dy[n, oy, ox, c]
;;
;; x, dy: [N, H, W, C]; dw: [7, 7, C] (TF.js filter [7, 7, C, 1]), overwritten; C % 4 == 0; byte
;; offsets in the imported memory (the TF.js wasm heap).
;; For each image row oy and each kernel row ky that reaches the image, four channels at a time: the
;; seven kernel-column sums of dw[ky, :, c..c+3] are held in registers while the row of dy is swept
;; (each dy vector meets the seven x vectors it multiplies), then written back, so x and dy are read
;; once per kernel row from cache and dw stays in L1/L2. Columns within 3 of the left or right edge
;; skip the taps that fall outside. Sums run in (n, oy, ox) order in float32.
;; fma variant: build-wasm.js also writes one with every multiply-add fused (relaxed SIMD).
(module
  (import "env" "memory" (memory 1))
  (func (export "depthwise_filter_grad7_nhwc")
    (param $x i32) (param $dy i32) (param $dw i32) (param $n i32) (param $h i32) (param $wd i32) (param $c i32)
    (local $ps i32) (local $rs i32) (local $cb i32) (local $img i32) (local $oy i32) (local $ky i32) (local $ky0 i32) (local $ky1 i32)
    (local $ox i32) (local $ow i32) (local $c4 i32) (local $xrow i32) (local $dyrow i32) (local $xp i32) (local $dp i32) (local $wp i32)
    (local $d v128) (local $a0 v128) (local $o0 i32) (local $a1 v128) (local $o1 i32) (local $a2 v128) (local $o2 i32) (local $a3 v128) (local $o3 i32) (local $a4 v128) (local $o4 i32) (local $a5 v128) (local $o5 i32) (local $a6 v128) (local $o6 i32)
    (local.set $ps (i32.shl (local.get $c) (i32.const 2)))
    (local.set $cb (local.get $ps))
    (local.set $rs (i32.mul (local.get $wd) (local.get $ps)))
    (local.set $o0 (i32.mul (local.get $ps) (i32.const 0)))
    (local.set $o1 (i32.mul (local.get $ps) (i32.const 1)))
    (local.set $o2 (i32.mul (local.get $ps) (i32.const 2)))
    (local.set $o3 (i32.mul (local.get $ps) (i32.const 3)))
    (local.set $o4 (i32.mul (local.get $ps) (i32.const 4)))
    (local.set $o5 (i32.mul (local.get $ps) (i32.const 5)))
    (local.set $o6 (i32.mul (local.get $ps) (i32.const 6)))
    (memory.fill (local.get $dw) (i32.const 0) (i32.mul (local.get $ps) (i32.const 49)))
    (local.set $img (i32.const 0))
    (block $img_done (loop $img_loop
      (br_if $img_done (i32.ge_u (local.get $img) (local.get $n)))
      (local.set $oy (i32.const 0))
      (block $oy_done (loop $oy_loop
        (br_if $oy_done (i32.ge_u (local.get $oy) (local.get $h)))
        (local.set $dyrow (i32.add (local.get $dy) (i32.mul (i32.add (i32.mul (local.get $img) (local.get $h)) (local.get $oy)) (local.get $rs))))
        ;; kernel rows that land inside the image
        (local.set $ky0 (select (i32.sub (i32.const 3) (local.get $oy)) (i32.const 0) (i32.gt_s (i32.sub (i32.const 3) (local.get $oy)) (i32.const 0))))
        (local.set $ky1 (select (i32.const 7) (i32.sub (i32.add (local.get $h) (i32.const 3)) (local.get $oy))
          (i32.lt_s (i32.const 7) (i32.sub (i32.add (local.get $h) (i32.const 3)) (local.get $oy)))))
        (local.set $ky (local.get $ky0))
        (block $ky_done (loop $ky_loop
          (br_if $ky_done (i32.ge_u (local.get $ky) (local.get $ky1)))
          (local.set $xrow (i32.add (local.get $x)
            (i32.mul (i32.add (i32.mul (local.get $img) (local.get $h)) (i32.sub (i32.add (local.get $oy) (local.get $ky)) (i32.const 3))) (local.get $rs))))
          (local.set $c4 (i32.const 0))
          (block $c_done (loop $c_loop
            (br_if $c_done (i32.ge_u (local.get $c4) (local.get $cb)))
            (local.set $wp (i32.add (i32.add (local.get $dw) (i32.mul (local.get $ky) (i32.mul (local.get $ps) (i32.const 7)))) (local.get $c4)))
              (local.set $a0 (v128.load (i32.add (local.get $wp) (local.get $o0))))
              (local.set $a1 (v128.load (i32.add (local.get $wp) (local.get $o1))))
              (local.set $a2 (v128.load (i32.add (local.get $wp) (local.get $o2))))
              (local.set $a3 (v128.load (i32.add (local.get $wp) (local.get $o3))))
              (local.set $a4 (v128.load (i32.add (local.get $wp) (local.get $o4))))
              (local.set $a5 (v128.load (i32.add (local.get $wp) (local.get $o5))))
              (local.set $a6 (v128.load (i32.add (local.get $wp) (local.get $o6))))
            ;; $xp: x[oy + ky - 3, ox - 3, c4] (may point before the row: only in-range taps are read)
            (local.set $xp (i32.sub (i32.add (local.get $xrow) (local.get $c4)) (local.get $o3)))
            (local.set $dp (i32.add (local.get $dyrow) (local.get $c4)))
            (local.set $ow (i32.const 0))
            (block $ox_done (loop $ox_loop
              (br_if $ox_done (i32.ge_u (local.get $ow) (local.get $wd)))
              (local.set $d (v128.load (local.get $dp)))
              (if (i32.and (i32.ge_u (local.get $ow) (i32.const 3)) (i32.lt_s (i32.add (local.get $ow) (i32.const 3)) (local.get $wd)))
                (then
                    (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (v128.load (local.get $xp)) (local.get $d))))
                    (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (v128.load (i32.add (local.get $xp) (local.get $o1))) (local.get $d))))
                    (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (v128.load (i32.add (local.get $xp) (local.get $o2))) (local.get $d))))
                    (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (v128.load (i32.add (local.get $xp) (local.get $o3))) (local.get $d))))
                    (local.set $a4 (f32x4.add (local.get $a4) (f32x4.mul (v128.load (i32.add (local.get $xp) (local.get $o4))) (local.get $d))))
                    (local.set $a5 (f32x4.add (local.get $a5) (f32x4.mul (v128.load (i32.add (local.get $xp) (local.get $o5))) (local.get $d))))
                    (local.set $a6 (f32x4.add (local.get $a6) (f32x4.mul (v128.load (i32.add (local.get $xp) (local.get $o6))) (local.get $d)))))
                (else
                    (if (i32.lt_u (i32.add (local.get $ow) (i32.const -3)) (local.get $wd)) (then (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (v128.load (local.get $xp)) (local.get $d))))))
                    (if (i32.lt_u (i32.add (local.get $ow) (i32.const -2)) (local.get $wd)) (then (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (v128.load (i32.add (local.get $xp) (local.get $o1))) (local.get $d))))))
                    (if (i32.lt_u (i32.add (local.get $ow) (i32.const -1)) (local.get $wd)) (then (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (v128.load (i32.add (local.get $xp) (local.get $o2))) (local.get $d))))))
                    (if (i32.lt_u (i32.add (local.get $ow) (i32.const 0)) (local.get $wd)) (then (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (v128.load (i32.add (local.get $xp) (local.get $o3))) (local.get $d))))))
                    (if (i32.lt_u (i32.add (local.get $ow) (i32.const 1)) (local.get $wd)) (then (local.set $a4 (f32x4.add (local.get $a4) (f32x4.mul (v128.load (i32.add (local.get $xp) (local.get $o4))) (local.get $d))))))
                    (if (i32.lt_u (i32.add (local.get $ow) (i32.const 2)) (local.get $wd)) (then (local.set $a5 (f32x4.add (local.get $a5) (f32x4.mul (v128.load (i32.add (local.get $xp) (local.get $o5))) (local.get $d))))))
                    (if (i32.lt_u (i32.add (local.get $ow) (i32.const 3)) (local.get $wd)) (then (local.set $a6 (f32x4.add (local.get $a6) (f32x4.mul (v128.load (i32.add (local.get $xp) (local.get $o6))) (local.get $d))))))))
              (local.set $xp (i32.add (local.get $xp) (local.get $ps)))
              (local.set $dp (i32.add (local.get $dp) (local.get $ps)))
              (local.set $ow (i32.add (local.get $ow) (i32.const 1)))
              (br $ox_loop)))
              (v128.store (i32.add (local.get $wp) (local.get $o0)) (local.get $a0))
              (v128.store (i32.add (local.get $wp) (local.get $o1)) (local.get $a1))
              (v128.store (i32.add (local.get $wp) (local.get $o2)) (local.get $a2))
              (v128.store (i32.add (local.get $wp) (local.get $o3)) (local.get $a3))
              (v128.store (i32.add (local.get $wp) (local.get $o4)) (local.get $a4))
              (v128.store (i32.add (local.get $wp) (local.get $o5)) (local.get $a5))
              (v128.store (i32.add (local.get $wp) (local.get $o6)) (local.get $a6))
            (local.set $c4 (i32.add (local.get $c4) (i32.const 16)))
            (br $c_loop)))
          (local.set $ky (i32.add (local.get $ky) (i32.const 1)))
          (br $ky_loop)))
        (local.set $oy (i32.add (local.get $oy) (i32.const 1)))
        (br $oy_loop)))
      (local.set $img (i32.add (local.get $img) (i32.const 1)))
      (br $img_loop)))
  )
)
