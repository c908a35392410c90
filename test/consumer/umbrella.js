/**
 * Run by scripts/check-consumer.js --registry / --umbrella in a fresh install of the packed
 * package: the app's tfjs-core is the package's (one copy on disk, one engine), gradients and
 * chained methods work; with the umbrella beside it (--umbrella), `@tensorflow/tfjs` shares that
 * engine (loaded after the package, so it registers its gradients over ours). Prints one JSON line.
 */
'use strict';
const path = require('path');

async function main() {
  const ours = require('convnext-tfjs');
  let tfjs = null;
  try {
    tfjs = require('@tensorflow/tfjs');
  } catch {
    // --registry: the umbrella is not installed, as for most users.
  }
  await ours.initBackend({ backend: 'cpu' });
  const tf = tfjs ?? ours.tf;
  const grad = tf.tidy(() =>
    Array.from(
      tf
        .grad((x) => x.square().sum())(tf.tensor1d([1, 2]))
        .dataSync(),
    ),
  );
  const fromApp = require.resolve('@tensorflow/tfjs-core');
  const fromPackage = require.resolve('@tensorflow/tfjs-core', { paths: [path.dirname(require.resolve('convnext-tfjs'))] });
  const oneCore = fromApp === fromPackage;
  const oneEngine = tfjs === null ? true : tfjs.engine() === ours.tf.engine();
  const umbrella = tfjs === null ? null : tfjs.version.tfjs;
  const ok = oneCore && oneEngine && grad.join(',') === '2,4' && ours.tf.getBackend() === 'cpu';
  process.stdout.write(JSON.stringify({ ok, umbrella, oneCore, oneEngine, grad, core: ours.tf.version_core }) + '\n');
}

main().catch((e) => {
  process.stderr.write(`${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});
