/**
 * The names of the package's own kernels (as tfjs-core's kernel_names.ts): the ops in src/layers and
 * src/train dispatch them with tf.engine().runKernel; the backends that register them (wasm:
 * src/backend/wasm_simd) run them, the others run each op's composite. Kept at the bottom of the
 * import order so ops and backends both import the names, and neither the other.
 */

/** GELU, exact erf form (src/layers/gelu.ts): input x. */
export const GELU_KERNEL = 'ConvNeXtGelu';
/** Its gradient dx = dy * gelu'(x) as one kernel: inputs x, dy. */
export const GELU_GRAD_KERNEL = 'ConvNeXtGeluGrad';
/** LayerNorm over the last axis (src/layers/layer_norm.ts): inputs x, weight, bias. */
export const LAYER_NORM_KERNEL = 'ConvNeXtLayerNorm';
/** Its gradient as one kernel: inputs x, weight, dy; outputs dx, dweight, dbias. */
export const LAYER_NORM_GRAD_KERNEL = 'ConvNeXtLayerNormGrad';
/** Layer scale and residual, x + gamma * y (src/layers/scaled_residual.ts): inputs x, y, gamma. */
export const SCALED_RESIDUAL_KERNEL = 'ConvNeXtScaledResidual';
/** The Linear layer's gradient (src/layers/linear.ts): inputs x [P, Cin], w [Cin, Cout], dy [P, Cout]; outputs dx, dw, db. */
export const LINEAR_GRAD_KERNEL = 'ConvNeXtLinearGrad';
/** One parameter's AdamW update (src/train/adamw.ts): inputs p, m, v, g; outputs the new p, m, v. */
export const ADAMW_KERNEL = 'ConvNeXtAdamW';
