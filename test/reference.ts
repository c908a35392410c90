/**
 * Naive float64 reference implementations with plain loops, written from the papers' formulas and
 * PyTorch's definitions, independent of TF.js. NHWC layouts, row-major Float64Arrays.
 */
export interface Nd {
  shape: number[];
  data: Float64Array;
}

export function nd(shape: number[], data: ArrayLike<number>): Nd {
  return { shape, data: Float64Array.from(data) };
}

function erf(x: number): number {
  // Abramowitz-Stegun 7.1.28 is too coarse for a reference; use a series/continued fraction.
  const t = Math.abs(x);
  let r: number;
  if (t < 3) {
    // Maclaurin series: erf(x) = 2/sqrt(pi) * sum (-1)^n x^(2n+1) / (n! (2n+1))
    let term = t;
    let sum = t;
    for (let n = 1; n < 200; n++) {
      term *= (-t * t) / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17) break;
    }
    r = (2 / Math.sqrt(Math.PI)) * sum;
  } else {
    // Continued fraction for erfc.
    let f = 0;
    for (let k = 60; k >= 1; k--) f = k / 2 / (t + f);
    r = 1 - Math.exp(-t * t) / Math.sqrt(Math.PI) / (t + f);
  }
  return x < 0 ? -r : r;
}

export function refGelu(x: number): number {
  return 0.5 * x * (1 + erf(x / Math.SQRT2));
}

/** LayerNorm over the last axis. */
export function refLayerNorm(x: Nd, w: ArrayLike<number>, b: ArrayLike<number>, eps: number): Nd {
  const c = x.shape[x.shape.length - 1];
  const out = new Float64Array(x.data.length);
  for (let r = 0; r < x.data.length / c; r++) {
    let mean = 0;
    for (let i = 0; i < c; i++) mean += x.data[r * c + i];
    mean /= c;
    let v = 0;
    for (let i = 0; i < c; i++) v += (x.data[r * c + i] - mean) ** 2;
    v /= c;
    for (let i = 0; i < c; i++) out[r * c + i] = ((x.data[r * c + i] - mean) / Math.sqrt(v + eps)) * w[i] + b[i];
  }
  return { shape: x.shape, data: out };
}

/**
 * Conv, NHWC input, HWIO weight [kh, kw, ci / groups, co], zero padding `pad`, stride s; with
 * `groups`, output channel o sees input channels of group floor(o / (co / groups)) only (PyTorch's
 * Conv2d groups).
 */
export function refConv2d(x: Nd, w: Nd, bias: ArrayLike<number>, stride: number, pad: number, groups = 1): Nd {
  const [n, h, wd, ci] = x.shape;
  const [kh, kw, cg, co] = w.shape;
  const og = co / groups;
  const oh = Math.floor((h + 2 * pad - kh) / stride) + 1;
  const ow = Math.floor((wd + 2 * pad - kw) / stride) + 1;
  const out = new Float64Array(n * oh * ow * co);
  for (let b = 0; b < n; b++)
    for (let y = 0; y < oh; y++)
      for (let xx = 0; xx < ow; xx++)
        for (let o = 0; o < co; o++) {
          let s = bias[o];
          const c0 = Math.floor(o / og) * cg;
          for (let i = 0; i < kh; i++)
            for (let j = 0; j < kw; j++) {
              const yy = y * stride + i - pad;
              const xj = xx * stride + j - pad;
              if (yy < 0 || yy >= h || xj < 0 || xj >= wd) continue;
              for (let c = 0; c < cg; c++) s += x.data[((b * h + yy) * wd + xj) * ci + c0 + c] * w.data[((i * kw + j) * cg + c) * co + o];
            }
          out[((b * oh + y) * ow + xx) * co + o] = s;
        }
  return { shape: [n, oh, ow, co], data: out };
}

/**
 * Depthwise conv, stride 1, 'same' zero padding; weight [k, k, C, 1] (TF.js), whose values are the
 * grouped conv's HWIO [k, k, 1, C] in the same order.
 */
export function refDepthwise(x: Nd, w: Nd, bias: ArrayLike<number>): Nd {
  const k = w.shape[0];
  const c = x.shape[3];
  return refConv2d(x, { shape: [k, k, 1, c], data: w.data }, bias, 1, (k - 1) / 2, c);
}

/** Linear on the last axis; weight [in, out]. */
export function refLinear(x: Nd, w: Nd, bias: ArrayLike<number>): Nd {
  const [ci, co] = w.shape;
  const rows = x.data.length / ci;
  const out = new Float64Array(rows * co);
  for (let r = 0; r < rows; r++)
    for (let o = 0; o < co; o++) {
      let s = bias[o];
      for (let i = 0; i < ci; i++) s += x.data[r * ci + i] * w.data[i * co + o];
      out[r * co + o] = s;
    }
  return { shape: [...x.shape.slice(0, -1), co], data: out };
}

/** GRN (FB2 code: divide by the channel mean of the spatial L2 norms). */
export function refGrn(x: Nd, gamma: ArrayLike<number>, beta: ArrayLike<number>, eps = 1e-6): Nd {
  const [n, h, w, c] = x.shape;
  const out = new Float64Array(x.data.length);
  for (let b = 0; b < n; b++) {
    const g = new Float64Array(c);
    for (let p = 0; p < h * w; p++) for (let ch = 0; ch < c; ch++) g[ch] += x.data[(b * h * w + p) * c + ch] ** 2;
    for (let ch = 0; ch < c; ch++) g[ch] = Math.sqrt(g[ch]);
    const mean = g.reduce((a, v) => a + v, 0) / c;
    for (let p = 0; p < h * w; p++)
      for (let ch = 0; ch < c; ch++) {
        const i = (b * h * w + p) * c + ch;
        out[i] = gamma[ch] * (x.data[i] * (g[ch] / (mean + eps))) + beta[ch] + x.data[i];
      }
  }
  return { shape: x.shape, data: out };
}

export function refMap(x: Nd, f: (v: number, i: number) => number): Nd {
  return { shape: x.shape, data: x.data.map(f) };
}

export function refAdd(a: Nd, b: Nd): Nd {
  return { shape: a.shape, data: a.data.map((v, i) => v + b.data[i]) };
}

/** Weights by timm name in TF.js layouts, as plain arrays (see src/model/params.ts). */
export type RefWeights = Map<string, Nd>;

/** One ConvNeXt block: dwconv -> LN -> fc1 -> GELU -> [GRN] -> fc2 -> [gamma] -> + x. */
export function refBlock(x: Nd, W: RefWeights, p: string, eps = 1e-6): Nd {
  const g = (n: string) => W.get(`${p}.${n}`);
  let y = refDepthwise(x, g('conv_dw.weight')!, g('conv_dw.bias')!.data);
  y = refLayerNorm(y, g('norm.weight')!.data, g('norm.bias')!.data, eps);
  y = refLinear(y, g('mlp.fc1.weight')!, g('mlp.fc1.bias')!.data);
  y = refMap(y, refGelu);
  if (g('mlp.grn.weight')) y = refGrn(y, g('mlp.grn.weight')!.data, g('mlp.grn.bias')!.data);
  y = refLinear(y, g('mlp.fc2.weight')!, g('mlp.fc2.bias')!.data);
  const gamma = g('gamma');
  if (gamma) {
    const c = gamma.data.length;
    y = refMap(y, (v, i) => v * gamma.data[i % c]);
  }
  return refAdd(x, y);
}

/** Whole model: returns the four stage maps, the pooled pre-logits and the logits. */
export function refModel(x: Nd, W: RefWeights, depths: number[], eps = 1e-6): { stages: Nd[]; preLogits: Nd; logits: Nd | null } {
  const w = (n: string) => W.get(n)!;
  const ps = w('stem.conv.weight').shape[0];
  let y = refLayerNorm(refConv2d(x, w('stem.conv.weight'), w('stem.conv.bias').data, ps, 0), w('stem.norm.weight').data, w('stem.norm.bias').data, eps);
  const stages: Nd[] = [];
  depths.forEach((d, i) => {
    if (i > 0) {
      const p = `stages.${i}.downsample`;
      y = refConv2d(refLayerNorm(y, w(`${p}.norm.weight`).data, w(`${p}.norm.bias`).data, eps), w(`${p}.conv.weight`), w(`${p}.conv.bias`).data, 2, 0);
    }
    for (let j = 0; j < d; j++) y = refBlock(y, W, `stages.${i}.blocks.${j}`, eps);
    stages.push(y);
  });
  const [n, h, wd, c] = y.shape;
  const pooled = new Float64Array(n * c);
  for (let b = 0; b < n; b++)
    for (let p = 0; p < h * wd; p++) for (let ch = 0; ch < c; ch++) pooled[b * c + ch] += y.data[(b * h * wd + p) * c + ch] / (h * wd);
  const preLogits = refLayerNorm({ shape: [n, c], data: pooled }, w('head.norm.weight').data, w('head.norm.bias').data, eps);
  const logits = W.has('head.fc.weight') ? refLinear(preLogits, w('head.fc.weight'), w('head.fc.bias').data) : null;
  return { stages, preLogits, logits };
}

/** Official parameter counts with 1000-class heads (torchvision meta, FB/FB2 and timm tables). */
export const OFFICIAL_PARAMS: Record<string, number> = {
  convnext_tiny: 28_589_128,
  convnext_small: 50_223_688,
  convnext_base: 88_591_464,
  convnext_large: 197_767_336,
  convnextv2_atto: 3_708_400,
};
