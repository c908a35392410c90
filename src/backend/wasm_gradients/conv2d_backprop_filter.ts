/**
 * Conv2DBackpropFilter for the wasm backend (NHWC, dilation 1 as tfjs-core's conv2d gradient):
 *
 *   dW[kh, kw, ci, co] = sum over n, oh, ow of x[n, oh*sh + kh - padTop, ow*sw + kw - padLeft, ci] * dy[n, oh, ow, co]
 *
 * Per filter tap this is a matrix product dW[tap] = X_tap^T DY over the N*OH*OW output pixels:
 * the valid pixels' row offsets are listed once per tap, then 2 (ci) x 4 (co) blocks of dW are
 * accumulated in registers (JS doubles, as the cpu backend) over that list; contiguous channel
 * reads, no per-element stores.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ConvGeometry, convGradKernel } from './common';

export function conv2dBackpropFilterNHWC(x: Float32Array, dy: Float32Array, g: ConvGeometry, out: Float32Array): void {
  const { batch, inH, inW, inC, outH, outW, outC, fH, fW, strideH, strideW, padTop, padLeft } = g;
  const P = batch * outH * outW;
  // Per filter tap: the (x, dy) row offsets of every output pixel whose window covers the tap.
  const xo = new Int32Array(P);
  const yo = new Int32Array(P);
  for (let kh = 0; kh < fH; kh++) {
    for (let kw = 0; kw < fW; kw++) {
      let np = 0;
      for (let n = 0; n < batch; n++) {
        for (let oh = 0; oh < outH; oh++) {
          const ih = oh * strideH + kh - padTop;
          if (ih < 0 || ih >= inH) continue;
          for (let ow = 0; ow < outW; ow++) {
            const iw = ow * strideW + kw - padLeft;
            if (iw < 0 || iw >= inW) continue;
            xo[np] = ((n * inH + ih) * inW + iw) * inC;
            yo[np] = ((n * outH + oh) * outW + ow) * outC;
            np++;
          }
        }
      }
      const tap = (kh * fW + kw) * inC * outC;
      // dW[tap] (inC x outC) = X_tap^T DY, register-blocked 2 ci x 4 co (float64 accumulators).
      let ci = 0;
      for (; ci + 2 <= inC; ci += 2) {
        const o0 = tap + ci * outC;
        const o1 = o0 + outC;
        let co = 0;
        for (; co + 4 <= outC; co += 4) {
          let a0 = 0,
            a1 = 0,
            a2 = 0,
            a3 = 0,
            b0 = 0,
            b1 = 0,
            b2 = 0,
            b3 = 0;
          for (let p = 0; p < np; p++) {
            const xi = xo[p] + ci;
            const yi = yo[p] + co;
            const x0 = x[xi];
            const x1 = x[xi + 1];
            const d0 = dy[yi],
              d1 = dy[yi + 1],
              d2 = dy[yi + 2],
              d3 = dy[yi + 3];
            a0 += x0 * d0;
            a1 += x0 * d1;
            a2 += x0 * d2;
            a3 += x0 * d3;
            b0 += x1 * d0;
            b1 += x1 * d1;
            b2 += x1 * d2;
            b3 += x1 * d3;
          }
          out[o0 + co] = a0;
          out[o0 + co + 1] = a1;
          out[o0 + co + 2] = a2;
          out[o0 + co + 3] = a3;
          out[o1 + co] = b0;
          out[o1 + co + 1] = b1;
          out[o1 + co + 2] = b2;
          out[o1 + co + 3] = b3;
        }
        for (; co < outC; co++) {
          let a0 = 0,
            b0 = 0;
          for (let p = 0; p < np; p++) {
            const d = dy[yo[p] + co];
            const xi = xo[p] + ci;
            a0 += x[xi] * d;
            b0 += x[xi + 1] * d;
          }
          out[o0 + co] = a0;
          out[o1 + co] = b0;
        }
      }
      for (; ci < inC; ci++) {
        const o0 = tap + ci * outC;
        let co = 0;
        for (; co + 4 <= outC; co += 4) {
          let a0 = 0,
            a1 = 0,
            a2 = 0,
            a3 = 0;
          for (let p = 0; p < np; p++) {
            const x0 = x[xo[p] + ci];
            const yi = yo[p] + co;
            a0 += x0 * dy[yi];
            a1 += x0 * dy[yi + 1];
            a2 += x0 * dy[yi + 2];
            a3 += x0 * dy[yi + 3];
          }
          out[o0 + co] = a0;
          out[o0 + co + 1] = a1;
          out[o0 + co + 2] = a2;
          out[o0 + co + 3] = a3;
        }
        for (; co < outC; co++) {
          let a0 = 0;
          for (let p = 0; p < np; p++) a0 += x[xo[p] + ci] * dy[yo[p] + co];
          out[o0 + co] = a0;
        }
      }
    }
  }
}

export const conv2dBackpropFilterConfig: tf.KernelConfig = convGradKernel(tf.Conv2DBackpropFilter, false, conv2dBackpropFilterNHWC);
