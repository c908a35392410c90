/**
 * DepthwiseConv2dNativeBackpropInput for the wasm backend (NHWC; strides, dilations, any padding):
 *
 *   dx[n, ih, iw, c] = sum over kh, kw, m of dy[n, oh, ow, c*M + m] * W[kh, kw, c, m]
 *                      where ih = oh*sh + kh*dh - padTop, iw = ow*sw + kw*dw - padLeft
 *
 * Gather form: each input pixel lists the taps that reach it, then sums them per channel in
 * registers (4-channel blocks for multiplier 1, sumRowProducts; JS doubles) and writes each output
 * element once.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ConvGeometry, convGradKernel, sumRowProducts } from './common';

export function depthwiseBackpropInputNHWC(dy: Float32Array, w: Float32Array, g: ConvGeometry, out: Float32Array): void {
  const { batch, inH, inW, inC, outH, outW, outC, fH, fW, strideH, strideW, dilH, dilW, padTop, padLeft } = g;
  const mult = outC / inC;
  // Output column reached by each (input column, kw) tap, or -1 when the tap misses.
  const owFor = new Int32Array(inW * fW);
  for (let iw = 0; iw < inW; iw++) {
    for (let kw = 0; kw < fW; kw++) {
      const t = iw + padLeft - kw * dilW;
      const ow = t / strideW;
      owFor[iw * fW + kw] = t >= 0 && t % strideW === 0 && ow < outW ? ow : -1;
    }
  }
  // Per input pixel: the (dy, filter) offsets of the taps that reach it.
  const taps = fH * fW;
  const dyo = new Int32Array(taps);
  const wo = new Int32Array(taps);
  for (let n = 0; n < batch; n++) {
    for (let ih = 0; ih < inH; ih++) {
      for (let iw = 0; iw < inW; iw++) {
        let nt = 0;
        for (let kh = 0; kh < fH; kh++) {
          const t = ih + padTop - kh * dilH;
          if (t < 0 || t % strideH !== 0) continue;
          const oh = t / strideH;
          if (oh >= outH) continue;
          const dyRow = (n * outH + oh) * outW;
          for (let kw = 0; kw < fW; kw++) {
            const ow = owFor[iw * fW + kw];
            if (ow < 0) continue;
            dyo[nt] = (dyRow + ow) * outC;
            wo[nt] = (kh * fW + kw) * outC;
            nt++;
          }
        }
        const xo = ((n * inH + ih) * inW + iw) * inC;
        if (mult === 1) {
          sumRowProducts(dy, dyo, 0, w, wo, 0, nt, 1, inC, out, xo);
        } else {
          for (let c = 0; c < inC; c++) {
            let a0 = 0;
            const d0 = c * mult;
            for (let t = 0; t < nt; t++) {
              const yi = dyo[t] + d0;
              const wi = wo[t] + d0;
              for (let m = 0; m < mult; m++) a0 += dy[yi + m] * w[wi + m];
            }
            out[xo + c] = a0;
          }
        }
      }
    }
  }
}

export const depthwiseBackpropInputConfig: tf.KernelConfig = convGradKernel(tf.DepthwiseConv2dNativeBackpropInput, true, depthwiseBackpropInputNHWC);
