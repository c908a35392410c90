/**
 * Exact GELU (PyTorch nn.GELU default, approximate='none'):
 *
 *   gelu(x) = 0.5 * x * (1 + erf(x / sqrt(2)))
 *
 * Not the tanh approximation (tfjs-layers 'gelu_new'). A kernel of its own (GELU_KERNEL): backends
 * that register one (wasm: src/backend/wasm_simd, one SIMD pass) run it; the others run the composite
 * of tfjs-core ops. The gradient is registered for the kernel, so both train the same way.
 */
import * as tf from '@tensorflow/tfjs-core';
import { GELU_KERNEL, GELU_GRAD_KERNEL } from '../kernel_names';

/** GELU from tfjs-core ops (five kernels), any backend. TF.js erf is within ~1.5e-7 of the true erf. */
export function geluComposite<T extends tf.Tensor>(x: T): T {
  return tf.tidy(() => tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2)))) as T);
}

/** Exact erf GELU, elementwise; any shape. */
export function gelu<T extends tf.Tensor>(x: T): T {
  if (x.dtype === 'float32' && x.size % 4 === 0 && tf.getKernel(GELU_KERNEL, tf.getBackend())) {
    return tf.engine().runKernel(GELU_KERNEL, { x }) as T;
  }
  return geluComposite(x);
}

// d/dx gelu(x) = Phi(x) + x phi(x) = 0.5 (1 + erf(x / sqrt 2)) + x exp(-x^2 / 2) / sqrt(2 pi)
tf.registerGradient({
  kernelName: GELU_KERNEL,
  inputsToSave: ['x'],
  gradFunc: (dy, saved) => {
    const [x] = saved;
    const d = dy as tf.Tensor;
    if (d.dtype === 'float32' && x.size % 4 === 0 && tf.getKernel(GELU_GRAD_KERNEL, tf.getBackend())) {
      return { x: () => tf.engine().runKernel(GELU_GRAD_KERNEL, { x, dy: d }) as tf.Tensor };
    }
    return {
      x: () =>
        tf.mul(
          dy as tf.Tensor,
          tf.add(tf.mul(0.5, tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2)))), tf.mul(x, tf.mul(tf.exp(tf.mul(tf.square(x), -0.5)), 1 / Math.sqrt(2 * Math.PI)))),
        ),
    };
  },
});
