;; Matrix product with bias, float32, 128-bit SIMD:   C[M, N] = A[M, K] B[K, N] (+ bias[N])
;;
;; Row-major A, B, C; bias [N] or none ($bias = 0); N % 8 == 0; byte offsets in the imported memory
;; (the TF.js wasm heap). B is read as it is stored (the model's [Cin, Cout] weights): no packed
;; copy of the weights lives anywhere. Instead, for each 8-column strip of B and each block of up
;; to $kc rows, that panel (kc x 8 floats) is copied to $scratch (32 * kc bytes, contiguous), then
;; every 4-row block of A runs against it from cache: reading B in place at its row stride would put
;; every panel row in the same few cache sets (strides of 1-12 KiB) and run at a third of the speed.
;; The 4 x 8 tile keeps 8 accumulators in registers; rows left over take a 1 x 8 tile.
;; Per element of C the products are summed in k order after the bias, as XNNPACK does.
;;
;; The gradient products of a Linear layer run on the same tiles without materialising a transpose:
;;   gemm_tn_f32   C[M, N] (+)= A^T B   with A stored [K, M]  (weight gradient x^T dy)
;;   gemm_nt_f32   C[M, N] (+)= A B^T   with B stored [N, K]  (input gradient dy W^T)
;; A is read through two strides (bytes to the next k of a row, bytes to the next row), so A^T costs
;; nothing but a different walk; B^T is gathered into the same contiguous panel the plain product
;; copies B into (8 scalar loads per k, amortised over every row of A). $bias = -1 accumulates into C.
;; fma variant: build-wasm.js also writes one with the tiles' multiply-adds fused (relaxed SIMD's
;; f32x4.relaxed_madd): ~1.15x on an FMA CPU, where the separate multiply and add share its ports.
(module
  (import "env" "memory" (memory 1))

  ;; The starting accumulator: the bias ($init > 0), zero ($init = -1), or C itself ($init = 0).
  (func $start (param $init i32) (param $c i32) (param $off i32) (result v128)
    (if (result v128) (i32.eqz (local.get $init))
      (then (v128.load (i32.add (local.get $c) (local.get $off))))
      (else (if (result v128) (i32.eq (local.get $init) (i32.const -1))
        (then (v128.const i32x4 0 0 0 0))
        (else (v128.load (i32.add (local.get $init) (local.get $off))))))))

  ;; C[4 rows, 8 cols] (+)= A[4 rows, k] * P[k, 8]; P: the copied panel, 32 bytes per k.
  ;; $init: bias row to start from, 0 to continue from C, -1 to start from zero.
  ;; A[r, kk] at $a + r * $sma + kk * $ska.
  (func $tile4 (param $a i32) (param $p i32) (param $c i32) (param $init i32) (param $k i32) (param $sma i32) (param $ska i32) (param $ldc i32)
    (local $end i32) (local $b0 v128) (local $b1 v128) (local $av v128) (local $a1 i32) (local $a2 i32) (local $a3 i32)
    (local $c00 v128) (local $c01 v128) (local $c10 v128) (local $c11 v128) (local $c20 v128) (local $c21 v128) (local $c30 v128) (local $c31 v128)
    (local.set $c00 (call $start (local.get $init) (local.get $c) (i32.const 0)))
    (local.set $c01 (call $start (local.get $init) (local.get $c) (i32.const 16)))
    (local.set $c10 (call $start (local.get $init) (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 1))) (i32.const 0)))
    (local.set $c11 (call $start (local.get $init) (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 1))) (i32.const 16)))
    (local.set $c20 (call $start (local.get $init) (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 2))) (i32.const 0)))
    (local.set $c21 (call $start (local.get $init) (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 2))) (i32.const 16)))
    (local.set $c30 (call $start (local.get $init) (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 3))) (i32.const 0)))
    (local.set $c31 (call $start (local.get $init) (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 3))) (i32.const 16)))
    (local.set $end (i32.add (local.get $a) (i32.mul (local.get $k) (local.get $ska))))
    (local.set $a1 (i32.add (local.get $a) (local.get $sma)))
    (local.set $a2 (i32.add (local.get $a1) (local.get $sma)))
    (local.set $a3 (i32.add (local.get $a2) (local.get $sma)))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $a) (local.get $end)))
      (local.set $b0 (v128.load (local.get $p)))
      (local.set $b1 (v128.load offset=16 (local.get $p)))
      (local.set $av (v128.load32_splat (local.get $a)))
      (local.set $c00 (f32x4.add (local.get $c00) (f32x4.mul (local.get $av) (local.get $b0))))
      (local.set $c01 (f32x4.add (local.get $c01) (f32x4.mul (local.get $av) (local.get $b1))))
      (local.set $av (v128.load32_splat (local.get $a1)))
      (local.set $c10 (f32x4.add (local.get $c10) (f32x4.mul (local.get $av) (local.get $b0))))
      (local.set $c11 (f32x4.add (local.get $c11) (f32x4.mul (local.get $av) (local.get $b1))))
      (local.set $av (v128.load32_splat (local.get $a2)))
      (local.set $c20 (f32x4.add (local.get $c20) (f32x4.mul (local.get $av) (local.get $b0))))
      (local.set $c21 (f32x4.add (local.get $c21) (f32x4.mul (local.get $av) (local.get $b1))))
      (local.set $av (v128.load32_splat (local.get $a3)))
      (local.set $c30 (f32x4.add (local.get $c30) (f32x4.mul (local.get $av) (local.get $b0))))
      (local.set $c31 (f32x4.add (local.get $c31) (f32x4.mul (local.get $av) (local.get $b1))))
      (local.set $a (i32.add (local.get $a) (local.get $ska)))
      (local.set $a1 (i32.add (local.get $a1) (local.get $ska)))
      (local.set $a2 (i32.add (local.get $a2) (local.get $ska)))
      (local.set $a3 (i32.add (local.get $a3) (local.get $ska)))
      (local.set $p (i32.add (local.get $p) (i32.const 32)))
      (br $next)))
    (v128.store offset=0 (local.get $c) (local.get $c00))
    (v128.store offset=16 (local.get $c) (local.get $c01))
    (v128.store offset=0 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 1))) (local.get $c10))
    (v128.store offset=16 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 1))) (local.get $c11))
    (v128.store offset=0 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 2))) (local.get $c20))
    (v128.store offset=16 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 2))) (local.get $c21))
    (v128.store offset=0 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 3))) (local.get $c30))
    (v128.store offset=16 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 3))) (local.get $c31))
  )

  ;; C[1 rows, 8 cols] (+)= A[1 rows, k] * P[k, 8]; P: the copied panel, 32 bytes per k.
  ;; $init: bias row to start from, 0 to continue from C, -1 to start from zero.
  (func $tile1 (param $a i32) (param $p i32) (param $c i32) (param $init i32) (param $k i32) (param $ska i32) (param $ldc i32)
    (local $end i32) (local $b0 v128) (local $b1 v128) (local $av v128)
    (local $c00 v128) (local $c01 v128)
    (local.set $c00 (call $start (local.get $init) (local.get $c) (i32.const 0)))
    (local.set $c01 (call $start (local.get $init) (local.get $c) (i32.const 16)))
    (local.set $end (i32.add (local.get $a) (i32.mul (local.get $k) (local.get $ska))))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $a) (local.get $end)))
      (local.set $b0 (v128.load (local.get $p)))
      (local.set $b1 (v128.load offset=16 (local.get $p)))
      (local.set $av (v128.load32_splat (local.get $a)))
      (local.set $c00 (f32x4.add (local.get $c00) (f32x4.mul (local.get $av) (local.get $b0))))
      (local.set $c01 (f32x4.add (local.get $c01) (f32x4.mul (local.get $av) (local.get $b1))))
      (local.set $a (i32.add (local.get $a) (local.get $ska)))
      (local.set $p (i32.add (local.get $p) (i32.const 32)))
      (br $next)))
    (v128.store offset=0 (local.get $c) (local.get $c00))
    (v128.store offset=16 (local.get $c) (local.get $c01))
  )

  ;; C[M, N] = A B (+ bias[N], or += with $bias = -1); A [M, K], B [K, N].
  (func (export "gemm_f32")
    (param $a i32) (param $b i32) (param $bias i32) (param $c i32)
    (param $m i32) (param $k i32) (param $n i32) (param $scratch i32) (param $kcmax i32) (param $ascratch i32) (param $mc i32)
    (call $gemm (local.get $a) (local.get $b) (local.get $bias) (local.get $c) (local.get $m) (local.get $k) (local.get $n)
      (local.get $scratch) (local.get $kcmax) (local.get $ascratch) (local.get $mc) (i32.const 0) (i32.const 0) (local.get $k) (local.get $n)))

  ;; C[M, N] = A^T B; A stored [K, M], B [K, N].
  (func (export "gemm_tn_f32")
    (param $a i32) (param $b i32) (param $bias i32) (param $c i32)
    (param $m i32) (param $k i32) (param $n i32) (param $scratch i32) (param $kcmax i32) (param $ascratch i32) (param $mc i32)
    (call $gemm (local.get $a) (local.get $b) (local.get $bias) (local.get $c) (local.get $m) (local.get $k) (local.get $n)
      (local.get $scratch) (local.get $kcmax) (local.get $ascratch) (local.get $mc) (i32.const 1) (i32.const 0) (local.get $m) (local.get $n)))

  ;; C[M, N] = A B^T; A [M, K], B stored [N, K].
  (func (export "gemm_nt_f32")
    (param $a i32) (param $b i32) (param $bias i32) (param $c i32)
    (param $m i32) (param $k i32) (param $n i32) (param $scratch i32) (param $kcmax i32) (param $ascratch i32) (param $mc i32)
    (call $gemm (local.get $a) (local.get $b) (local.get $bias) (local.get $c) (local.get $m) (local.get $k) (local.get $n)
      (local.get $scratch) (local.get $kcmax) (local.get $ascratch) (local.get $mc) (i32.const 0) (i32.const 1) (local.get $k) (local.get $n)))

  ;; Any of the three on a block of C's rows or columns taken out of a larger product, for the kernel
  ;; threads (src/backend/wasm_simd/split.ts; each thread its own scratch). Strides in floats:
  ;; $lda: A's row stride (K for A [M, K]; the whole M for A^T stored [K, M], $a at the first column
  ;; taken); $ldc: C's row stride, which is also B's for B [K, N] (the whole N; $b, $c and a bias
  ;; pointer at the first column taken). Every element of C sums in the same order as in the whole
  ;; product: the same bits however it is split.
  (func (export "gemm_part_f32")
    (param $a i32) (param $b i32) (param $bias i32) (param $c i32)
    (param $m i32) (param $k i32) (param $n i32) (param $scratch i32) (param $kcmax i32) (param $ascratch i32) (param $mc i32)
    (param $transa i32) (param $transb i32) (param $lda i32) (param $ldc i32)
    (call $gemm (local.get $a) (local.get $b) (local.get $bias) (local.get $c) (local.get $m) (local.get $k) (local.get $n)
      (local.get $scratch) (local.get $kcmax) (local.get $ascratch) (local.get $mc) (local.get $transa) (local.get $transb)
      (local.get $lda) (local.get $ldc)))

  ;; panel B[k0 : k0 + kc, j : j + 8] -> $p (32 bytes per k); $transb: B stored [N, K] (row stride $ldb)
  (func $panel (param $b i32) (param $p i32) (param $k0 i32) (param $kc i32) (param $j i32) (param $ldc i32) (param $ldb i32) (param $transb i32)
    (local $src i32) (local $dend i32)
    (local.set $dend (i32.add (local.get $p) (i32.shl (local.get $kc) (i32.const 5))))
    (if (local.get $transb)
      (then
        ;; B^T: column kk of the panel is rows j .. j + 7 of the stored [N, K] matrix at column kk
        (local.set $src (i32.add (local.get $b) (i32.add (i32.mul (local.get $j) (local.get $ldb)) (i32.shl (local.get $k0) (i32.const 2)))))
        (block $t_done (loop $t_next
          (br_if $t_done (i32.ge_u (local.get $p) (local.get $dend)))
          (f32.store offset=0 (local.get $p) (f32.load (local.get $src)))
          (f32.store offset=4 (local.get $p) (f32.load (i32.add (local.get $src) (local.get $ldb))))
          (f32.store offset=8 (local.get $p) (f32.load (i32.add (local.get $src) (i32.mul (local.get $ldb) (i32.const 2)))))
          (f32.store offset=12 (local.get $p) (f32.load (i32.add (local.get $src) (i32.mul (local.get $ldb) (i32.const 3)))))
          (f32.store offset=16 (local.get $p) (f32.load (i32.add (local.get $src) (i32.mul (local.get $ldb) (i32.const 4)))))
          (f32.store offset=20 (local.get $p) (f32.load (i32.add (local.get $src) (i32.mul (local.get $ldb) (i32.const 5)))))
          (f32.store offset=24 (local.get $p) (f32.load (i32.add (local.get $src) (i32.mul (local.get $ldb) (i32.const 6)))))
          (f32.store offset=28 (local.get $p) (f32.load (i32.add (local.get $src) (i32.mul (local.get $ldb) (i32.const 7)))))
          (local.set $p (i32.add (local.get $p) (i32.const 32)))
          (local.set $src (i32.add (local.get $src) (i32.const 4)))
          (br $t_next))))
      (else
        (local.set $src (i32.add (local.get $b) (i32.add (i32.mul (local.get $k0) (local.get $ldc)) (i32.shl (local.get $j) (i32.const 2)))))
        (block $p_done (loop $p_next
          (br_if $p_done (i32.ge_u (local.get $p) (local.get $dend)))
          (v128.store (local.get $p) (v128.load (local.get $src)))
          (v128.store offset=16 (local.get $p) (v128.load offset=16 (local.get $src)))
          (local.set $p (i32.add (local.get $p) (i32.const 32)))
          (local.set $src (i32.add (local.get $src) (local.get $ldc)))
          (br $p_next))))))

  ;; The blocked product behind the three exports. For each block of $kcmax values of k and $mc
  ;; (% 4 == 0) rows of C, those rows of A (or columns of A^T) are packed into 4-row tiles in
  ;; $ascratch (kc x 4 contiguous floats each; $mc * $kcmax * 4 bytes, L2-resident), then every
  ;; 8-column panel of B (or B^T) is copied to $scratch and runs against the packed tiles, so the A
  ;; block is reused from cache by every panel instead of being streamed again for each. (Walking
  ;; A^T in place, 16 bytes per row at a stride of M floats, crowded a few cache sets: 1.4-2.3x
  ;; slower on ConvNeXt-T's x^T dy.) Rows of C left over (M % 4) take the 1-row tile on A in place.
  ;; Per element of C: bias (or zero, or C), then k ascending: the bits of the unblocked order.
  (func $gemm
    (param $a i32) (param $b i32) (param $bias i32) (param $c i32)
    (param $m i32) (param $k i32) (param $n i32) (param $scratch i32) (param $kcmax i32) (param $ascratch i32) (param $mc i32)
    (param $transa i32) (param $transb i32) (param $ldaf i32) (param $ldcf i32)
    (local $ldc i32) (local $lda i32) (local $j i32) (local $i i32) (local $i0 i32) (local $iend i32) (local $m4 i32)
    (local $k0 i32) (local $kc i32) (local $init i32) (local $src i32) (local $dst i32) (local $dend i32) (local $kk i32) (local $t i32)
    (local $ldb i32) (local $sa i32) (local $la i32)
    ;; C's row stride, and B's for B [K, N] ($ldcf floats: N unless a block of columns is taken)
    (local.set $ldc (i32.shl (local.get $ldcf) (i32.const 2)))
    ;; row strides: A ($ldaf floats: M for A^T stored [K, M], K for A [M, K]); B^T stored [N, K]
    (local.set $lda (i32.shl (local.get $ldaf) (i32.const 2)))
    (local.set $ldb (i32.shl (local.get $k) (i32.const 2)))
    ;; bytes from A[i, kk] to A[i, kk + 1] and to A[i + 1, kk], for the 1-row tiles on A in place
    (local.set $la (select (local.get $lda) (i32.const 4) (local.get $transa)))
    (local.set $sa (select (i32.const 4) (local.get $lda) (local.get $transa)))
    (local.set $m4 (i32.and (local.get $m) (i32.const -4)))
    (local.set $k0 (i32.const 0))
    (block $k_done (loop $k_next
      (br_if $k_done (i32.ge_u (local.get $k0) (local.get $k)))
      (local.set $kc (select (local.get $kcmax) (i32.sub (local.get $k) (local.get $k0))
        (i32.lt_u (local.get $kcmax) (i32.sub (local.get $k) (local.get $k0)))))
      (local.set $i0 (i32.const 0))
      (block $i0_done (loop $i0_next
        (br_if $i0_done (i32.ge_u (local.get $i0) (local.get $m4)))
        (local.set $iend (select (i32.add (local.get $i0) (local.get $mc)) (local.get $m4)
          (i32.lt_u (i32.add (local.get $i0) (local.get $mc)) (local.get $m4))))
        ;; pack rows i0 : iend of A (columns of A^T), k0 : k0 + kc, into 4-row tiles:
        ;; tile t at $ascratch + t * kc * 16, A[i + r, kk] at + kk * 16 + r * 4
        (if (local.get $transa)
          (then
            (local.set $kk (i32.const 0))
            (block $pk_done (loop $pk_next
              (br_if $pk_done (i32.ge_u (local.get $kk) (local.get $kc)))
              (local.set $src (i32.add (local.get $a) (i32.add (i32.mul (i32.add (local.get $k0) (local.get $kk)) (local.get $lda)) (i32.shl (local.get $i0) (i32.const 2)))))
              (local.set $dst (i32.add (local.get $ascratch) (i32.shl (local.get $kk) (i32.const 4))))
              (local.set $t (local.get $i0))
              (block $pt_done (loop $pt_next
                (br_if $pt_done (i32.ge_u (local.get $t) (local.get $iend)))
                (v128.store (local.get $dst) (v128.load (local.get $src)))
                (local.set $src (i32.add (local.get $src) (i32.const 16)))
                (local.set $dst (i32.add (local.get $dst) (i32.shl (local.get $kc) (i32.const 4))))
                (local.set $t (i32.add (local.get $t) (i32.const 4)))
                (br $pt_next)))
              (local.set $kk (i32.add (local.get $kk) (i32.const 1)))
              (br $pk_next))))
          (else
            ;; A stored [M, K]: four rows read side by side, interleaved (4 scalar moves per k)
            (local.set $dst (local.get $ascratch))
            (local.set $t (local.get $i0))
            (block $pr_done (loop $pr_next
              (br_if $pr_done (i32.ge_u (local.get $t) (local.get $iend)))
              (local.set $src (i32.add (local.get $a) (i32.add (i32.mul (local.get $t) (local.get $lda)) (i32.shl (local.get $k0) (i32.const 2)))))
              (local.set $dend (i32.add (local.get $dst) (i32.shl (local.get $kc) (i32.const 4))))
              (block $pc_done (loop $pc_next
                (br_if $pc_done (i32.ge_u (local.get $dst) (local.get $dend)))
                (f32.store offset=0 (local.get $dst) (f32.load (local.get $src)))
                (f32.store offset=4 (local.get $dst) (f32.load (i32.add (local.get $src) (local.get $lda))))
                (f32.store offset=8 (local.get $dst) (f32.load (i32.add (local.get $src) (i32.shl (local.get $lda) (i32.const 1)))))
                (f32.store offset=12 (local.get $dst) (f32.load (i32.add (local.get $src) (i32.mul (local.get $lda) (i32.const 3)))))
                (local.set $src (i32.add (local.get $src) (i32.const 4)))
                (local.set $dst (i32.add (local.get $dst) (i32.const 16)))
                (br $pc_next)))
              (local.set $t (i32.add (local.get $t) (i32.const 4)))
              (br $pr_next)))))
        (local.set $j (i32.const 0))
        (block $j_done (loop $j_next
          (br_if $j_done (i32.ge_u (local.get $j) (local.get $n)))
          (local.set $init (select
            (select
              (select (i32.const 0) (i32.add (local.get $bias) (i32.shl (local.get $j) (i32.const 2))) (i32.eq (local.get $bias) (i32.const -1)))
              (i32.const -1) (local.get $bias))
            (i32.const 0)
            (i32.eqz (local.get $k0))))
          (call $panel (local.get $b) (local.get $scratch) (local.get $k0) (local.get $kc) (local.get $j) (local.get $ldc) (local.get $ldb) (local.get $transb))
          (local.set $i (local.get $i0))
          (local.set $src (local.get $ascratch))
          (block $i4_done (loop $i4_next
            (br_if $i4_done (i32.ge_u (local.get $i) (local.get $iend)))
            ;; packed tile: A^T[i + r, kk] at $src + kk * 16 + r * 4
            (call $tile4 (local.get $src) (local.get $scratch)
              (i32.add (i32.add (local.get $c) (i32.mul (local.get $i) (local.get $ldc))) (i32.shl (local.get $j) (i32.const 2)))
              (local.get $init) (local.get $kc) (i32.const 4) (i32.const 16) (local.get $ldc))
            (local.set $src (i32.add (local.get $src) (i32.shl (local.get $kc) (i32.const 4))))
            (local.set $i (i32.add (local.get $i) (i32.const 4)))
            (br $i4_next)))
          (if (i32.ge_u (local.get $iend) (local.get $m4))
            (then
              ;; rows left over, A^T in place
              (local.set $i (local.get $m4))
              (block $i1_done (loop $i1_next
                (br_if $i1_done (i32.ge_u (local.get $i) (local.get $m)))
                (call $tile1
                  (i32.add (local.get $a) (i32.add (i32.mul (local.get $i) (local.get $sa)) (i32.mul (local.get $k0) (local.get $la))))
                  (local.get $scratch)
                  (i32.add (i32.add (local.get $c) (i32.mul (local.get $i) (local.get $ldc))) (i32.shl (local.get $j) (i32.const 2)))
                  (local.get $init) (local.get $kc) (local.get $la) (local.get $ldc))
                (local.set $i (i32.add (local.get $i) (i32.const 1)))
                (br $i1_next)))))
          (local.set $j (i32.add (local.get $j) (i32.const 8)))
          (br $j_next)))
        (local.set $i0 (local.get $iend))
        (br $i0_next)))
      ;; M < 4: no 4-column tiles at all; the 1-row tiles still need every panel
      (if (i32.eqz (local.get $m4))
        (then
          (local.set $j (i32.const 0))
          (block $jj_done (loop $jj_next
            (br_if $jj_done (i32.ge_u (local.get $j) (local.get $n)))
            (local.set $init (select
              (select
                (select (i32.const 0) (i32.add (local.get $bias) (i32.shl (local.get $j) (i32.const 2))) (i32.eq (local.get $bias) (i32.const -1)))
                (i32.const -1) (local.get $bias))
              (i32.const 0)
              (i32.eqz (local.get $k0))))
            (call $panel (local.get $b) (local.get $scratch) (local.get $k0) (local.get $kc) (local.get $j) (local.get $ldc) (local.get $ldb) (local.get $transb))
            (local.set $i (i32.const 0))
            (block $r_done (loop $r_next
              (br_if $r_done (i32.ge_u (local.get $i) (local.get $m)))
              (call $tile1
                (i32.add (local.get $a) (i32.add (i32.mul (local.get $i) (local.get $sa)) (i32.mul (local.get $k0) (local.get $la))))
                (local.get $scratch)
                (i32.add (i32.add (local.get $c) (i32.mul (local.get $i) (local.get $ldc))) (i32.shl (local.get $j) (i32.const 2)))
                (local.get $init) (local.get $kc) (local.get $la) (local.get $ldc))
              (local.set $i (i32.add (local.get $i) (i32.const 1)))
              (br $r_next)))
            (local.set $j (i32.add (local.get $j) (i32.const 8)))
            (br $jj_next)))))
      (local.set $k0 (i32.add (local.get $k0) (local.get $kc)))
      (br $k_next)))
  )
)
