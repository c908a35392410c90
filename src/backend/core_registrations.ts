/**
 * The two registrations tfjs-core leaves to the @tensorflow/tfjs umbrella: every op's gradient
 * (tfjs-core's register_all_gradients) and the chained tensor methods (`x.sum()`, its
 * register_all_chained_ops). tfjs-core 4.22's CommonJS entry (dist/tf-core.node.js) registers
 * neither: without them `tf.grad` / `variableGrads` fail with "gradient function not found" for
 * every kernel. We depend on tfjs-core and the backends, not the umbrella (~290 MB installed, and its
 * tfjs-layers types fail strict consumers: issue 14), so scripts/build-gradients.js bundles those two
 * tfjs-core modules, from the installed tfjs-core, into dist/src/backend/core_registrations.bundle.js
 * at build time, and this file loads that bundle once. The registries are tfjs-core globals, so an
 * app that also imports the umbrella registers the same functions over them: harmless.
 *
 * Node only (src/backend/index.ts). The browser bundle does without: it trains nothing.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as fs from 'fs';
import * as path from 'path';
import { BackendError } from '../errors';

/** The generated bundle, beside this file in dist/. */
export const CORE_REGISTRATIONS_BUNDLE = path.join(__dirname, 'core_registrations.bundle.js');

/**
 * Registers tfjs-core's gradients and chained ops (idempotent: the bundle is a cached module).
 * @throws BackendError when the bundle was not built (run `npm run build`)
 */
export function registerCoreGradients(): void {
  if (!fs.existsSync(CORE_REGISTRATIONS_BUNDLE)) {
    throw new BackendError(`tfjs-core's gradient registrations are missing: ${CORE_REGISTRATIONS_BUNDLE} was not built (npm run build)`);
  }
  require(CORE_REGISTRATIONS_BUNDLE);
  // A bundle from another tfjs-core would register into a registry ours does not read.
  if (tf.getGradient(tf.Conv2D) == null) throw new BackendError(`${CORE_REGISTRATIONS_BUNDLE} registered no gradients on this tfjs-core ${tf.version_core}`);
}
