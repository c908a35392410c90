/**
 * WebGPU backend selection (src/backend/webgpu.ts) with an injected Dawn: auto-selection takes a
 * hardware adapter and skips a software one with the reason; a software one only by name;
 * navigator.gpu exists before tfjs-backend-webgpu is loaded; adapter options pass through;
 * releaseWebGpu() lets go of Dawn. Needs no GPU (the real backend: webgpu.test.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { expect } from 'chai';
import { BackendError } from '../../src/errors';
import { initBackend, ModuleLoader } from '../../src/backend';
import { gpuDeviceNodes, installWebGpu, isSoftwareAdapter, releaseWebGpu, webGpuAdapter } from '../../src/backend/webgpu';

interface FakeInfo {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  isFallbackAdapter: boolean;
}

const NVIDIA: FakeInfo = { vendor: 'nvidia', architecture: 'hopper', device: '', description: 'NVIDIA H200', isFallbackAdapter: false };
const SWIFTSHADER: FakeInfo = {
  vendor: 'google',
  architecture: 'swiftshader',
  device: 'swiftshader-device-subzero-',
  description: 'SwiftShader driver 5.0.0',
  isFallbackAdapter: true,
};

/** A loader with tfjs-node(-gpu) absent, a fake Dawn offering `adapter`, a fake tfjs-backend-webgpu (cpu kernels' class under the name 'webgpu'). */
function fakeLoader(adapter: FakeInfo | null): { loader: ModuleLoader; calls: string[]; dawnOptions: string[][]; gpuAtLoad: boolean[] } {
  const calls: string[] = [];
  const dawnOptions: string[][] = [];
  const gpuAtLoad: boolean[] = [];
  const loader: ModuleLoader = (pkg) => {
    calls.push(pkg);
    if (pkg.startsWith('@tensorflow/tfjs-node')) throw new Error(`Cannot find module '${pkg}'`);
    if (pkg === 'webgpu') {
      return Promise.resolve({
        create: (options: string[]) => {
          dawnOptions.push(options);
          return { requestAdapter: async () => (adapter ? { info: adapter } : null) };
        },
        globals: { GPUBufferUsageFakeForTest: { STORAGE: 128 } },
      });
    }
    if (pkg === '@tensorflow/tfjs-backend-webgpu') {
      const nav = (globalThis as { navigator?: { gpu?: unknown } }).navigator;
      gpuAtLoad.push(nav?.gpu !== undefined);
      if (!tf.findBackendFactory('webgpu')) tf.registerBackend('webgpu', () => new MathBackendCPU(), 3);
      return {};
    }
    return require(pkg);
  };
  return { loader, calls, dawnOptions, gpuAtLoad };
}

function navigatorGpu(): unknown {
  return (globalThis as { navigator?: { gpu?: unknown } }).navigator?.gpu;
}

describe('webgpu selection (fake Dawn)', () => {
  const saved = { backend: process.env.CONVNEXT_BACKEND, adapter: process.env.CONVNEXT_WEBGPU_ADAPTER };
  beforeEach(() => {
    delete process.env.CONVNEXT_BACKEND;
    delete process.env.CONVNEXT_WEBGPU_ADAPTER;
  });
  afterEach(async () => {
    releaseWebGpu();
    if (tf.findBackendFactory('webgpu')) tf.removeBackend('webgpu');
    for (const [k, v] of [
      ['CONVNEXT_BACKEND', saved.backend],
      ['CONVNEXT_WEBGPU_ADAPTER', saved.adapter],
    ] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    await tf.setBackend('wasm');
  });

  it('auto: a hardware adapter wins over tfjs-node and wasm; navigator.gpu is set before the backend package loads', async () => {
    const { loader, calls, gpuAtLoad } = fakeLoader(NVIDIA);
    const info = await initBackend({ loader });
    expect(calls.slice(0, 3)).to.deep.equal(['@tensorflow/tfjs-node-gpu', 'webgpu', '@tensorflow/tfjs-backend-webgpu']);
    expect(gpuAtLoad).to.deep.equal([true]);
    expect(info.backend).to.equal('webgpu');
    expect(info.package).to.equal('@tensorflow/tfjs-backend-webgpu');
    expect(info.adapter).to.include({ vendor: 'nvidia', description: 'NVIDIA H200', software: false });
    expect(info.skipped.map((s) => s.package)).to.deep.equal(['@tensorflow/tfjs-node-gpu']);
    expect((globalThis as Record<string, unknown>).GPUBufferUsageFakeForTest).to.deep.equal({ STORAGE: 128 });
  });

  it('auto: a software adapter is skipped with the reason, and the backend package is not even loaded', async () => {
    const { loader, calls } = fakeLoader(SWIFTSHADER);
    const info = await initBackend({ loader });
    expect(info.backend).to.equal('wasm');
    expect(calls).to.not.include('@tensorflow/tfjs-backend-webgpu');
    const s = info.skipped.find((x) => x.package === '@tensorflow/tfjs-backend-webgpu');
    expect(s?.reason).to.match(
      /only a software adapter \(SwiftShader driver 5\.0\.0 \/ google \/ swiftshader.*\) is available: far slower than wasm.*--backend webgpu/,
    );
    expect(navigatorGpu()).to.equal(undefined);
    // The refusal is remembered: a second auto call does not create Dawn again.
    const before = calls.filter((c) => c === 'webgpu').length;
    await initBackend({ loader });
    expect(calls.filter((c) => c === 'webgpu').length).to.equal(before);
  });

  it('by name: the software adapter is used and reported', async () => {
    const { loader } = fakeLoader(SWIFTSHADER);
    const info = await initBackend({ backend: 'webgpu', loader });
    expect(info.backend).to.equal('webgpu');
    expect(info.adapter).to.include({ architecture: 'swiftshader', software: true });
    expect(webGpuAdapter()).to.deep.equal(info.adapter);
    process.env.CONVNEXT_BACKEND = 'webgpu';
    expect((await initBackend({ loader })).backend).to.equal('webgpu');
  });

  it('no adapter: auto skips it naming the driver to install; by name it is a BackendError with the install hint', async () => {
    const { loader } = fakeLoader(null);
    const info = await initBackend({ loader });
    expect(info.backend).to.equal('wasm');
    expect(info.skipped.find((x) => x.package === '@tensorflow/tfjs-backend-webgpu')?.reason).to.match(
      /Dawn found no WebGPU adapter .*Vulkan driver.*VK_ICD_FILENAMES/,
    );
    let err: Error | undefined;
    await initBackend({ backend: 'webgpu', loader }).catch((e) => (err = e));
    expect(err).to.be.instanceOf(BackendError);
    expect(err!.message).to.match(
      /could not initialise backend 'webgpu': @tensorflow\/tfjs-backend-webgpu: Dawn found no WebGPU adapter.*npm install webgpu @tensorflow\/tfjs-backend-webgpu/,
    );
  });

  it('webgpu packages absent: skipped in auto mode with the module error', async () => {
    const { loader: base } = fakeLoader(NVIDIA);
    const loader: ModuleLoader = (pkg) => {
      if (pkg === 'webgpu') throw new Error("Cannot find module 'webgpu'");
      return base(pkg);
    };
    const info = await initBackend({ loader });
    expect(info.backend).to.equal('wasm');
    expect(info.skipped.map((s) => `${s.package}: ${s.reason}`)).to.include("@tensorflow/tfjs-backend-webgpu: Cannot find module 'webgpu'");
  });

  it('adapter options pass through: dawnOptions, and CONVNEXT_WEBGPU_ADAPTER as adapter=<name> unless one is given', async () => {
    const a = fakeLoader(NVIDIA);
    process.env.CONVNEXT_WEBGPU_ADAPTER = 'NVIDIA H200';
    await initBackend({ backend: 'webgpu', loader: a.loader, dawnOptions: ['backend=vulkan'] });
    expect(a.dawnOptions).to.deep.equal([['backend=vulkan', 'adapter=NVIDIA H200']]);
    expect(webGpuAdapter()?.dawnOptions).to.deep.equal(['backend=vulkan', 'adapter=NVIDIA H200']);
    releaseWebGpu();
    const b = fakeLoader(NVIDIA);
    await initBackend({ backend: 'webgpu', loader: b.loader, dawnOptions: ['adapter=other'] });
    expect(b.dawnOptions).to.deep.equal([['adapter=other']]);
  });

  it('releaseWebGpu drops navigator.gpu and the backend instance; a later init creates Dawn again', async () => {
    const { loader, dawnOptions } = fakeLoader(NVIDIA);
    await initBackend({ backend: 'webgpu', loader });
    expect(navigatorGpu()).to.not.equal(undefined);
    releaseWebGpu();
    expect(navigatorGpu()).to.equal(undefined);
    expect(webGpuAdapter()).to.equal(null);
    expect(tf.findBackendFactory('webgpu'), 'factory kept for a later init').to.not.equal(null);
    expect((await initBackend({ backend: 'webgpu', loader })).backend).to.equal('webgpu');
    expect(dawnOptions).to.have.length(2);
  });

  it('auto mode on Linux without a GPU device node refuses before loading Dawn; by name it still asks Dawn', async () => {
    const { loader, calls } = fakeLoader(NVIDIA);
    let err: Error | undefined;
    await installWebGpu(loader, [], false, () => []).catch((e) => (err = e));
    expect(err?.message).to.match(/no GPU device node \(\/dev\/dri\/renderD\*, \/dev\/nvidia\*, \/dev\/dxg\)/);
    expect(calls).to.deep.equal([]);
    expect((await installWebGpu(loader, [], true, () => [])).description).to.equal('NVIDIA H200');
    expect((await installWebGpu(loader, [], false, () => ['/dev/nvidia0'])).description, 'installed: reused').to.equal('NVIDIA H200');
    const nodes = gpuDeviceNodes();
    if (process.platform === 'linux') expect(nodes).to.be.an('array');
    else expect(nodes).to.equal(null);
  });

  it('isSoftwareAdapter: the fallback flag, or info naming SwiftShader / llvmpipe / lavapipe', () => {
    expect(isSoftwareAdapter({ info: NVIDIA })).to.equal(false);
    expect(isSoftwareAdapter({ info: SWIFTSHADER })).to.equal(true);
    expect(isSoftwareAdapter({ info: { vendor: 'mesa', description: 'llvmpipe (LLVM 15.0.6, 256 bits)' } })).to.equal(true);
    expect(isSoftwareAdapter({ info: { device: 'lavapipe' } })).to.equal(true);
    expect(isSoftwareAdapter({ isFallbackAdapter: true, info: { vendor: 'x' } })).to.equal(true);
    expect(isSoftwareAdapter({ info: { vendor: 'amd', architecture: 'rdna-3', description: 'AMD Radeon RX 7900' } })).to.equal(false);
  });
});
