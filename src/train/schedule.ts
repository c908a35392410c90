/**
 * Learning-rate schedule of the ConvNeXt recipes (FB utils.cosine_scheduler), per optimizer step:
 * linear warmup from 0 to `base` over `warmupSteps`, then cosine from `base` to `min`.
 *
 *   lr(i) = base * i / warmup                                    i < warmup
 *   lr(i) = min + (base - min) * (1 + cos(pi * (i - warmup) / (total - warmup))) / 2
 */
export function cosineLr(step: number, opts: { base: number; min?: number; totalSteps: number; warmupSteps?: number }): number {
  const min = opts.min ?? 1e-6;
  const warm = Math.min(opts.warmupSteps ?? 0, opts.totalSteps);
  if (step < warm) return (opts.base * step) / warm;
  const span = Math.max(1, opts.totalSteps - warm);
  const progress = Math.min(1, (step - warm) / span);
  return min + ((opts.base - min) * (1 + Math.cos(Math.PI * progress))) / 2;
}
