;; Depthwise k x k convolution, NHWC, stride 1, 'same' zero padding (k odd), float32, 128-bit SIMD.
;;
;;   y[n, oy, ox, c] = bias[c] + sum_{ky, kx} x[n, oy + ky - k/2, ox + kx - k/2, c] * w[ky, kx, c]
;;
;; x, y: [N, H, W, C]; w: [k, k, C] (TF.js filter [k, k, C, 1]); bias: [C], or none when $bias is 0.
;; All pointers are byte offsets into the imported memory (the TF.js wasm backend's heap); C % 4 == 0.
;; Four channels per v128 lane group; away from the left/right edges four output pixels share each
;; weight load; near them one pixel at a time with the kernel columns clipped. Taps are summed in
;; (ky, kx) order after the bias, as XNNPACK does, so results match it bit for bit (the fma variant
;; rounds once per tap instead of twice).
;; depthwise_nhwc_part computes a range of units, each one output row by one block of channels
;; (src/backend/wasm_simd/split.ts shares a call among the kernel threads by units: whole rows when
;; N * H is large, rows x channel blocks when it is not). Every output float is summed the same way
;; whatever the cut, so a split call gives the unsplit call's bits.
;; build-wasm.js writes two binaries: this one (plain memory) and one importing shared memory.
;; fma variant: also both with every multiply-add fused (relaxed SIMD, scripts/wat-fma.js).
(module
  (import "env" "memory" (memory 1))
  (func (export "depthwise_nhwc")
    (param $x i32) (param $w i32) (param $bias i32) (param $y i32)
    (param $n i32) (param $h i32) (param $wd i32) (param $c i32) (param $k i32)
    (call $block (local.get $x) (local.get $w) (local.get $bias) (local.get $y) (local.get $h) (local.get $wd) (local.get $c) (local.get $k)
      (i32.const 0) (i32.mul (local.get $n) (local.get $h)) (i32.const 0) (local.get $c)))

  ;; Units $u0 .. $u1 - 1, unit u = output row u / B, channels [cbw (u % B), min(C, cbw (u % B + 1)))
  ;; with B = ceil(C / cbw) blocks of $cbw channels (cbw % 4 == 0; cbw = C: units are rows).
  (func (export "depthwise_nhwc_part")
    (param $x i32) (param $w i32) (param $bias i32) (param $y i32)
    (param $h i32) (param $wd i32) (param $c i32) (param $k i32) (param $u0 i32) (param $u1 i32) (param $cbw i32)
    (local $nb i32) (local $r i32) (local $c0 i32)
    (local.set $nb (i32.div_u (i32.sub (i32.add (local.get $c) (local.get $cbw)) (i32.const 1)) (local.get $cbw)))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $u0) (local.get $u1)))
      (local.set $r (i32.div_u (local.get $u0) (local.get $nb)))
      (local.set $c0 (i32.mul (i32.sub (local.get $u0) (i32.mul (local.get $r) (local.get $nb))) (local.get $cbw)))
      (call $block (local.get $x) (local.get $w) (local.get $bias) (local.get $y) (local.get $h) (local.get $wd) (local.get $c) (local.get $k)
        (local.get $r) (i32.add (local.get $r) (i32.const 1))
        (local.get $c0) (select (local.get $c) (i32.add (local.get $c0) (local.get $cbw)) (i32.lt_u (local.get $c) (i32.add (local.get $c0) (local.get $cbw)))))
      (local.set $u0 (i32.add (local.get $u0) (i32.const 1)))
      (br $next))))

  ;; Output rows $r0 .. $r1 - 1 of the N * H rows (row r: image r / H, y = r % H), channels $c0 .. $c1 - 1
  ;; (multiples of 4). Each output row reads its k input rows of its own image only, so rows and
  ;; channel blocks can run on different threads.
  (func $block
    (param $x i32) (param $w i32) (param $bias i32) (param $y i32)
    (param $h i32) (param $wd i32) (param $c i32) (param $k i32) (param $r0 i32) (param $r1 i32) (param $c0 i32) (param $c1 i32)
    (local $cs i32) (local $pad i32) (local $ps i32) (local $ps2 i32) (local $ps3 i32) (local $rs i32) (local $wks i32) (local $cb i32)
    (local $img i32) (local $oy i32) (local $ox i32) (local $ky0 i32) (local $ky1 i32) (local $kx0 i32) (local $kx1 i32)
    (local $c4 i32) (local $ky i32) (local $kx i32) (local $xp i32) (local $wp i32) (local $yp i32) (local $xb i32) (local $yb i32)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128) (local $wv v128)
    (local.set $pad (i32.shr_u (local.get $k) (i32.const 1)))
    (local.set $ps (i32.shl (local.get $c) (i32.const 2)))
    ;; the block's channels, as byte offsets within a pixel
    (local.set $cs (i32.shl (local.get $c0) (i32.const 2)))
    (local.set $cb (i32.shl (local.get $c1) (i32.const 2)))
    (local.set $ps2 (i32.shl (local.get $ps) (i32.const 1)))
    (local.set $ps3 (i32.add (local.get $ps2) (local.get $ps)))
    (local.set $rs (i32.mul (local.get $wd) (local.get $ps)))
    (local.set $wks (i32.mul (local.get $k) (local.get $ps)))
    (block $oy_done (loop $oy_loop
        (br_if $oy_done (i32.ge_u (local.get $r0) (local.get $r1)))
        (local.set $img (i32.div_u (local.get $r0) (local.get $h)))
        (local.set $oy (i32.sub (local.get $r0) (i32.mul (local.get $img) (local.get $h))))
        (local.set $xb (i32.add (local.get $x) (i32.mul (i32.mul (local.get $img) (local.get $h)) (local.get $rs))))
        (local.set $yb (i32.add (local.get $y) (i32.mul (i32.mul (local.get $img) (local.get $h)) (local.get $rs))))
        ;; rows of the kernel that land inside the image
        (local.set $ky0 (select (i32.sub (local.get $pad) (local.get $oy)) (i32.const 0)
          (i32.gt_s (i32.sub (local.get $pad) (local.get $oy)) (i32.const 0))))
        (local.set $ky1 (select (local.get $k) (i32.sub (i32.add (local.get $h) (local.get $pad)) (local.get $oy))
          (i32.lt_s (local.get $k) (i32.sub (i32.add (local.get $h) (local.get $pad)) (local.get $oy)))))
        (local.set $ox (i32.const 0))
        (block $ox_done (loop $ox_loop
          (br_if $ox_done (i32.ge_u (local.get $ox) (local.get $wd)))
          (if (i32.and (i32.ge_s (local.get $ox) (local.get $pad))
                       (i32.lt_s (i32.add (i32.add (local.get $ox) (i32.const 3)) (local.get $pad)) (local.get $wd)))
            (then
              ;; four output pixels ox..ox+3, all kernel columns inside the image
              (local.set $c4 (local.get $cs))
              (block $c_done (loop $c_loop
                (br_if $c_done (i32.ge_u (local.get $c4) (local.get $cb)))
                (local.set $a0 (select (v128.load (i32.add (local.get $bias) (local.get $c4))) (v128.const i32x4 0 0 0 0) (local.get $bias)))
                (local.set $a1 (local.get $a0)) (local.set $a2 (local.get $a0)) (local.set $a3 (local.get $a0))
                (local.set $ky (local.get $ky0))
                (block $ky_done (loop $ky_loop
                  (br_if $ky_done (i32.ge_u (local.get $ky) (local.get $ky1)))
                  (local.set $xp (i32.add (i32.add (i32.add (local.get $xb)
                      (i32.mul (i32.sub (i32.add (local.get $oy) (local.get $ky)) (local.get $pad)) (local.get $rs)))
                      (i32.mul (i32.sub (local.get $ox) (local.get $pad)) (local.get $ps))) (local.get $c4)))
                  (local.set $wp (i32.add (i32.add (local.get $w) (i32.mul (local.get $ky) (local.get $wks))) (local.get $c4)))
                  (local.set $kx (i32.const 0))
                  (block $kx_done (loop $kx_loop
                    (br_if $kx_done (i32.ge_u (local.get $kx) (local.get $k)))
                    (local.set $wv (v128.load (local.get $wp)))
                    (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (v128.load (local.get $xp)) (local.get $wv))))
                    (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (v128.load (i32.add (local.get $xp) (local.get $ps))) (local.get $wv))))
                    (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (v128.load (i32.add (local.get $xp) (local.get $ps2))) (local.get $wv))))
                    (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (v128.load (i32.add (local.get $xp) (local.get $ps3))) (local.get $wv))))
                    (local.set $xp (i32.add (local.get $xp) (local.get $ps)))
                    (local.set $wp (i32.add (local.get $wp) (local.get $ps)))
                    (local.set $kx (i32.add (local.get $kx) (i32.const 1)))
                    (br $kx_loop)))
                  (local.set $ky (i32.add (local.get $ky) (i32.const 1)))
                  (br $ky_loop)))
                (local.set $yp (i32.add (i32.add (local.get $yb)
                    (i32.mul (i32.add (i32.mul (local.get $oy) (local.get $wd)) (local.get $ox)) (local.get $ps))) (local.get $c4)))
                (v128.store (local.get $yp) (local.get $a0))
                (v128.store (i32.add (local.get $yp) (local.get $ps)) (local.get $a1))
                (v128.store (i32.add (local.get $yp) (local.get $ps2)) (local.get $a2))
                (v128.store (i32.add (local.get $yp) (local.get $ps3)) (local.get $a3))
                (local.set $c4 (i32.add (local.get $c4) (i32.const 16)))
                (br $c_loop)))
              (local.set $ox (i32.add (local.get $ox) (i32.const 4))))
            (else
              ;; one output pixel near the left or right edge: clip the kernel columns
              (local.set $kx0 (select (i32.sub (local.get $pad) (local.get $ox)) (i32.const 0)
                (i32.gt_s (i32.sub (local.get $pad) (local.get $ox)) (i32.const 0))))
              (local.set $kx1 (select (local.get $k) (i32.sub (i32.add (local.get $wd) (local.get $pad)) (local.get $ox))
                (i32.lt_s (local.get $k) (i32.sub (i32.add (local.get $wd) (local.get $pad)) (local.get $ox)))))
              (local.set $c4 (local.get $cs))
              (block $c1_done (loop $c1_loop
                (br_if $c1_done (i32.ge_u (local.get $c4) (local.get $cb)))
                (local.set $a0 (select (v128.load (i32.add (local.get $bias) (local.get $c4))) (v128.const i32x4 0 0 0 0) (local.get $bias)))
                (local.set $ky (local.get $ky0))
                (block $ky1_done (loop $ky1_loop
                  (br_if $ky1_done (i32.ge_u (local.get $ky) (local.get $ky1)))
                  (local.set $xp (i32.add (i32.add (i32.add (local.get $xb)
                      (i32.mul (i32.sub (i32.add (local.get $oy) (local.get $ky)) (local.get $pad)) (local.get $rs)))
                      (i32.mul (i32.sub (i32.add (local.get $ox) (local.get $kx0)) (local.get $pad)) (local.get $ps))) (local.get $c4)))
                  (local.set $wp (i32.add (i32.add (i32.add (local.get $w) (i32.mul (local.get $ky) (local.get $wks)))
                      (i32.mul (local.get $kx0) (local.get $ps))) (local.get $c4)))
                  (local.set $kx (local.get $kx0))
                  (block $kx1_done (loop $kx1_loop
                    (br_if $kx1_done (i32.ge_u (local.get $kx) (local.get $kx1)))
                    (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (v128.load (local.get $xp)) (v128.load (local.get $wp)))))
                    (local.set $xp (i32.add (local.get $xp) (local.get $ps)))
                    (local.set $wp (i32.add (local.get $wp) (local.get $ps)))
                    (local.set $kx (i32.add (local.get $kx) (i32.const 1)))
                    (br $kx1_loop)))
                  (local.set $ky (i32.add (local.get $ky) (i32.const 1)))
                  (br $ky1_loop)))
                (v128.store (i32.add (i32.add (local.get $yb)
                    (i32.mul (i32.add (i32.mul (local.get $oy) (local.get $wd)) (local.get $ox)) (local.get $ps))) (local.get $c4))
                  (local.get $a0))
                (local.set $c4 (i32.add (local.get $c4) (i32.const 16)))
                (br $c1_loop)))
              (local.set $ox (i32.add (local.get $ox) (i32.const 1)))))
          (br $ox_loop)))
        (local.set $r0 (i32.add (local.get $r0) (i32.const 1)))
        (br $oy_loop)))
  )
)
