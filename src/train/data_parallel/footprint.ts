/**
 * How much of the wasm backend's heap a training step takes, estimated from the config and the
 * image size, and the chunk size `chunkSize: 'auto'` picks from it (chunks.ts computes a share in
 * chunks of at most that many samples).
 *
 * The heap is wasm32 linear memory: at most 4 GB (emscripten's getHeapMax, 65535 pages of 64 KiB in
 * tfjs-backend-wasm 4.22), and it never shrinks. A step needs
 *
 *   bytes(n) = PARAM_COPIES x 4 x params  +  ACTIVATION_FACTOR x 4 x activationFloats x n
 *
 * for n samples: the weights, their gradients, the count-weighted sums of chunks and micro-batches
 * and AdamW's two moments (workers 1: all in this heap) are fixed; the forward's outputs that the
 * backward keeps (activationFloatsPerSample) scale with the samples, and the factor covers what the
 * count leaves out (the backward's own temporaries, LayerNorm statistics, the allocator's slack and
 * emscripten's 20 % over-growth of the heap).
 *
 * Calibrated 2026-12-02 (tfjs-backend-wasm 4.22, SIMD, one thread) on the heap's size after one full
 * classifier step (it never shrinks: the step's peak); see ACTIVATION_FACTOR for the cases and figures.
 * FCMAE counts its decoder's parameters and activations too.
 */
import { ConvNeXtConfig, countParams } from '../../model/configs';

/** FCMAE's decoder as the estimate sees it: width, blocks, and the patch side its prediction covers. */
export interface FcmaeDecoderShape {
  dim: number;
  depth: number;
  patch: number;
}

/**
 * Parameters of the FCMAE decoder (FB2 fcmae.py): proj (d3 -> D), the mask token, `depth` V2 blocks
 * of width D (7x7 depthwise, LayerNorm, Linear D -> 4D, GRN, Linear 4D -> D) and pred (D -> patch^2 x 3).
 */
function decoderParams(c: ConvNeXtConfig, d: FcmaeDecoderShape): number {
  const D = d.dim;
  const block = 49 * D + D + 2 * D + (D + 1) * 4 * D + 2 * 4 * D + (4 * D + 1) * D;
  return (c.dims[3] + 1) * D + D + d.depth * block + (D + 1) * d.patch * d.patch * 3;
}

/** tfjs-backend-wasm's heap limit in bytes (emscripten getHeapMax: 4 GiB less one 64 KiB page). */
export const WASM_HEAP_MAX_BYTES = 4294901760;

/**
 * The share of the heap 'auto' plans for: the rest is headroom for fragmentation (a 4C x HW
 * gradient must find one free block) and the estimate's error.
 */
export const WASM_HEAP_BUDGET = 0.7;

/** Parameter-sized float arrays a step holds at once: weights, gradients, their running sums, AdamW m and v. */
export const PARAM_COPIES = 6;

/**
 * Heap bytes per activation float counted by activationFloatsPerSample, over 4 (a float's bytes), of
 * a classifier step (V1 and V2 alike once GRN's five tensors are counted); FCMAE_ACTIVATION_FACTOR
 * for FCMAE's. Measured with `convnext bench --train --workers 1 --reps 1 --warmup 0 --chunk-size B
 * --json` (its wasm_heap_mb: the heap after one unchunked step, i.e. its peak) and, for FCMAE, one
 * step of Fcmae.loss + AdamW (decoder 512 x 1, mask ratio 0.6); one process per case:
 *
 *   case                     heap MiB    floats/sample   slope MiB/sample   factor
 *   convnext_atto 64 b8         119.6          643,328
 *   convnext_atto 64 b32        248.2                          5.36           2.18
 *   convnext_tiny 224 b2        904.5       27,283,200
 *   convnext_tiny 224 b4       1390.1                        242.8           2.33
 *   convnextv2_atto 224 b4      708.8       19,797,568
 *   convnextv2_atto 224 b8     1416.6                        177.0           2.34
 *   FCMAE v2_atto 64 b8         298.5        1,720,576
 *   FCMAE v2_atto 64 b32        708.9                         17.1           2.61
 *   FCMAE v2_atto 224 b4       1006.5       21,077,056
 *   FCMAE v2_atto 224 b8       1822.2                        204.0           2.54
 *
 * (the V1 intercepts, 77 and 419 MiB, are 5.4 and 3.8 parameter copies: PARAM_COPIES 6 leaves room
 * for the chunks' running sum). Each factor is the largest measured plus 7 %: with them ConvNeXt-T
 * at 224 gets chunks of 8 (its step at batch 8 peaks at 2.4 GB; batch 16 uses the whole heap, 20
 * aborts), atto at 64 none up to batch 400.
 */
export const ACTIVATION_FACTOR = 2.5;

/** ACTIVATION_FACTOR of an FCMAE step (the masking's multiplies, the decoder, the pixel loss). */
export const FCMAE_ACTIVATION_FACTOR = 2.8;

/**
 * Floats of the activations one sample's training forward produces at `imageSize`: the input, the
 * stem's conv and LayerNorm outputs, each downsampling's LayerNorm and conv outputs, and per block
 * the depthwise conv, LayerNorm, Linear 4C, GELU, (V2) GRN's five 4C tensors, Linear C and the residual sum. With
 * `decoder` (FCMAE): its blocks at the encoder's last resolution, its projection to pixels, and the
 * masked pixel targets.
 */
export function activationFloatsPerSample(c: ConvNeXtConfig, imageSize: number, decoder?: FcmaeDecoderShape): number {
  let h = Math.floor(imageSize / c.patchSize);
  let w = h;
  let floats = imageSize * imageSize * c.inChannels + 2 * h * w * c.dims[0];
  // GRN: x^2, x * Nx, gamma * (x * Nx), + beta, + x, each 4C.
  const blocks = (hw: number, d: number, depth: number, grn: boolean) => depth * hw * (4 * d + (grn ? 7 : 2) * c.mlpRatio * d);
  c.dims.forEach((d, i) => {
    if (i > 0) {
      floats += h * w * c.dims[i - 1];
      h = Math.floor(h / 2);
      w = Math.floor(w / 2);
      floats += h * w * d;
    }
    floats += blocks(h * w, d, c.depths[i], c.useGrn);
  });
  if (decoder) floats += h * w * decoder.dim + blocks(h * w, decoder.dim, decoder.depth, true) + 3 * imageSize * imageSize * 3;
  return floats;
}

/** Estimated peak heap bytes of a training step on `samples` samples (file header). */
export function trainFootprintBytes(c: ConvNeXtConfig, imageSize: number, samples: number, decoder?: FcmaeDecoderShape): number {
  const factor = decoder ? FCMAE_ACTIVATION_FACTOR : ACTIVATION_FACTOR;
  const params = countParams(c) + (decoder ? decoderParams(c, decoder) : 0);
  return PARAM_COPIES * 4 * params + factor * 4 * activationFloatsPerSample(c, imageSize, decoder) * samples;
}

/**
 * The largest even chunk whose estimated step fits WASM_HEAP_BUDGET of the heap (at least 2: a
 * chunk holds whole Mixup/CutMix pairs).
 */
export function autoChunkSize(c: ConvNeXtConfig, imageSize: number, decoder?: FcmaeDecoderShape): number {
  const fixed = trainFootprintBytes(c, imageSize, 0, decoder);
  const perSample = trainFootprintBytes(c, imageSize, 1, decoder) - fixed;
  const fits = Math.floor((WASM_HEAP_BUDGET * WASM_HEAP_MAX_BYTES - fixed) / perSample);
  return Math.max(2, fits - (fits % 2));
}
