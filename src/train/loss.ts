/**
 * Cross-entropy with label smoothing (torch.nn.CrossEntropyLoss(label_smoothing=eps)) and soft
 * targets (mixup / cutmix):
 *
 *   target = (1 - eps) * onehot + eps / K ;  loss = mean_n( -sum_k target_nk * log_softmax(z)_nk )
 */
import * as tf from '@tensorflow/tfjs-core';

/** Smoothed one-hot targets [N, K]. */
export function smoothOneHot(labels: number[] | Int32Array, numClasses: number, smoothing = 0): tf.Tensor2D {
  return tf.tidy(() => {
    const oh = tf.cast(tf.oneHot(tf.tensor1d(Array.from(labels), 'int32'), numClasses), 'float32');
    return tf.add(tf.mul(oh, 1 - smoothing), smoothing / numClasses) as tf.Tensor2D;
  });
}

/** Mean soft-target cross-entropy of logits [N, K] against targets [N, K] (rows sum to 1). */
export function softCrossEntropy(logits: tf.Tensor2D, targets: tf.Tensor2D): tf.Scalar {
  return tf.tidy(() => tf.mean(tf.neg(tf.sum(tf.mul(targets, tf.logSoftmax(logits)), -1))) as tf.Scalar);
}
