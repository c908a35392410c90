/**
 * DepthwiseConv2dNativeBackpropFilter for the wasm backend (NHWC; strides, dilations, any padding):
 *
 *   dW[kh, kw, c, m] = sum over n, oh, ow of x[n, oh*sh + kh*dh - padTop, ow*sw + kw*dw - padLeft, c] * dy[n, oh, ow, c*M + m]
 *
 * The flat index of dW[kh, kw, c, m] within tap (kh, kw) equals dy's channel index c*M + m.
 * Multiplier 1 (ConvNeXt) takes a register-blocked path; other multipliers a simple one.
 * Accumulation in JS doubles, as the cpu backend.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ConvGeometry, convGradKernel, sumRowProducts } from './common';

export function depthwiseBackpropFilterNHWC(x: Float32Array, dy: Float32Array, g: ConvGeometry, out: Float32Array): void {
  if (g.outC === g.inC) depthwiseFilterMult1(x, dy, g, out);
  else depthwiseFilterGeneral(x, dy, g, out);
}

/** First and one-past-last output index whose tap at offset k*dil lands inside [0, inSize). */
function outRange(k: number, dil: number, pad: number, stride: number, inSize: number, outSize: number): [number, number] {
  const lo = Math.max(0, Math.ceil((pad - k * dil) / stride));
  const hi = Math.min(outSize, Math.floor((inSize - 1 + pad - k * dil) / stride) + 1);
  return [lo, Math.max(lo, hi)];
}

/**
 * Multiplier 1 (ConvNeXt): per tap, where each output row's run of pixels the tap reaches starts
 * in x and dy (rows clipped once, no per-pixel bounds checks), then dW[tap] = the sum of x row *
 * dy row over those runs.
 */
function depthwiseFilterMult1(x: Float32Array, dy: Float32Array, g: ConvGeometry, out: Float32Array): void {
  const { batch, inH, inW, inC: C, outH, outW, fH, fW, strideH, strideW, dilH, dilW, padTop, padLeft } = g;
  const xo = new Int32Array(batch * outH);
  const yo = new Int32Array(batch * outH);
  for (let kh = 0; kh < fH; kh++) {
    const [ohMin, ohMax] = outRange(kh, dilH, padTop, strideH, inH, outH);
    for (let kw = 0; kw < fW; kw++) {
      const [owMin, owMax] = outRange(kw, dilW, padLeft, strideW, inW, outW);
      const iwMin = owMin * strideW + kw * dilW - padLeft;
      let runs = 0;
      for (let n = 0; n < batch; n++) {
        for (let oh = ohMin; oh < ohMax; oh++, runs++) {
          const ih = oh * strideH + kh * dilH - padTop;
          xo[runs] = ((n * inH + ih) * inW + iwMin) * C;
          yo[runs] = ((n * outH + oh) * outW + owMin) * C;
        }
      }
      sumRowProducts(x, xo, strideW * C, dy, yo, C, runs, owMax - owMin, C, out, (kh * fW + kw) * C);
    }
  }
}

/** Any channel multiplier M: pixel -> tap -> channel, float64 accumulator per filter element. */
function depthwiseFilterGeneral(x: Float32Array, dy: Float32Array, g: ConvGeometry, out: Float32Array): void {
  const { batch, inH, inW, inC, outH, outW, outC, fH, fW, strideH, strideW, dilH, dilW, padTop, padLeft } = g;
  const mult = outC / inC;
  const acc = new Float64Array(fH * fW * outC);
  for (let n = 0; n < batch; n++) {
    for (let oh = 0; oh < outH; oh++) {
      const ih0 = oh * strideH - padTop;
      for (let ow = 0; ow < outW; ow++) {
        const iw0 = ow * strideW - padLeft;
        const dyOff = ((n * outH + oh) * outW + ow) * outC;
        for (let kh = 0; kh < fH; kh++) {
          const ih = ih0 + kh * dilH;
          if (ih < 0 || ih >= inH) continue;
          const xRow = (n * inH + ih) * inW;
          for (let kw = 0; kw < fW; kw++) {
            const iw = iw0 + kw * dilW;
            if (iw < 0 || iw >= inW) continue;
            const xOff = (xRow + iw) * inC;
            const wOff = (kh * fW + kw) * outC;
            for (let c = 0, d = 0; c < inC; c++) {
              const xv = x[xOff + c];
              for (let m = 0; m < mult; m++, d++) acc[wOff + d] += xv * dy[dyOff + d];
            }
          }
        }
      }
    }
  }
  for (let i = 0; i < acc.length; i++) out[i] = acc[i];
}

export const depthwiseBackpropFilterConfig: tf.KernelConfig = convGradKernel(tf.DepthwiseConv2dNativeBackpropFilter, true, depthwiseBackpropFilterNHWC);
