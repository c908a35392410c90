/** Backend selection: preference order, optional peers that fail to load, forced choices, env. */
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { BackendError } from '../../src/errors';
import { availableBackends, initBackend, ModuleLoader } from '../../src/backend';

/** A loader where tfjs-node(-gpu) (and Dawn, in NODE_MISSING) are absent or broken, the rest real. */
function loaderWith(failures: Record<string, string>): { loader: ModuleLoader; calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    loader: (pkg) => {
      calls.push(pkg);
      if (failures[pkg]) throw new Error(failures[pkg]);
      return require(pkg);
    },
  };
}

const NODE_MISSING = {
  '@tensorflow/tfjs-node-gpu': "Cannot find module '@tensorflow/tfjs-node-gpu'",
  webgpu: "Cannot find module 'webgpu'",
  '@tensorflow/tfjs-node': "Cannot find module '@tensorflow/tfjs-node'",
};

describe('initBackend', () => {
  const saved = process.env.CONVNEXT_BACKEND;
  afterEach(() => {
    if (saved === undefined) delete process.env.CONVNEXT_BACKEND;
    else process.env.CONVNEXT_BACKEND = saved;
  });

  it('auto: tries node-gpu, then webgpu (Dawn first), then node, and settles on wasm when they are absent', async () => {
    delete process.env.CONVNEXT_BACKEND;
    const { loader, calls } = loaderWith(NODE_MISSING);
    const info = await initBackend({ loader });
    expect(calls.slice(0, 4)).to.deep.equal(['@tensorflow/tfjs-node-gpu', 'webgpu', '@tensorflow/tfjs-node', '@tensorflow/tfjs-backend-wasm']);
    expect(info.backend).to.equal('wasm');
    expect(tf.getBackend()).to.equal('wasm');
    expect(info.skipped.map((s) => s.package)).to.deep.equal(['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-backend-webgpu', '@tensorflow/tfjs-node']);
    expect(info.skipped[0].reason).to.match(/Cannot find module/);
  });

  it('auto: a tfjs-node that throws while loading (e.g. libtensorflow missing) is skipped, not fatal', async () => {
    const { loader } = loaderWith({
      ...NODE_MISSING,
      '@tensorflow/tfjs-node': 'libtensorflow.so.2: cannot open shared object file: No such file or directory',
    });
    const info = await initBackend({ backend: 'auto', loader });
    expect(info.backend).to.equal('wasm');
    expect(info.skipped[2].reason).to.match(/libtensorflow/);
  });

  it('auto: falls back to cpu when wasm cannot load either', async () => {
    const { loader } = loaderWith({ ...NODE_MISSING, '@tensorflow/tfjs-backend-wasm': 'wasm broken' });
    // A registered-but-broken wasm is simulated by the loader failing.
    const info = await initBackend({ loader });
    expect(info.backend).to.equal('cpu');
  });

  it('honours CONVNEXT_BACKEND and the option, the option first', async () => {
    process.env.CONVNEXT_BACKEND = 'cpu';
    expect((await initBackend()).backend).to.equal('cpu');
    expect((await initBackend({ backend: 'wasm' })).backend).to.equal('wasm');
  });

  it('a forced backend that cannot load is an error naming it and how to install it, never a silent fallback', async () => {
    const { loader } = loaderWith(NODE_MISSING);
    let err: Error | undefined;
    await initBackend({ backend: 'node', loader }).catch((e) => (err = e));
    expect(err).to.be.instanceOf(BackendError);
    expect(err!.message).to.match(/could not initialise backend 'node': @tensorflow\/tfjs-node: Cannot find module.*npm install @tensorflow\/tfjs-node/);
    err = undefined;
    await initBackend({ backend: 'webgl' }).catch((e) => (err = e));
    expect(err!.message).to.match(/unknown backend 'webgl': use one of auto, node-gpu, webgpu, node, tensorflow, wasm, cpu/);
  });

  it('really has no tfjs-node here unless installed, and lists what is usable', async () => {
    const found = await availableBackends();
    expect(found).to.include.members(['wasm', 'cpu']);
    let hasNode = true;
    try {
      require.resolve('@tensorflow/tfjs-node');
    } catch {
      hasNode = false;
    }
    expect(found.includes('node')).to.equal(hasNode);
  });
});
