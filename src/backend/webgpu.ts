/**
 * The WebGPU backend in Node: @tensorflow/tfjs-backend-webgpu on Dawn's Node bindings (the `webgpu`
 * package: prebuilt dawn.node, N-API; Vulkan on Linux, Metal on macOS, D3D12 on Windows). Both are
 * optional peers, found at run time.
 *
 * What they need in Node (checked with webgpu 0.6.2, tfjs 4.22, Node 20):
 * - `webgpu` is ESM only ("type": "module"): imported with a real dynamic import() that tsc's
 *   CommonJS output does not turn into require() (see importEsm). tfjs-backend-webgpu's `main` is a
 *   CommonJS bundle on the same tfjs-core, so it is require()d like the other backends.
 * - tfjs-backend-webgpu registers its backend at import time only if `globalThis.navigator.gpu`
 *   exists, and uses the WebGPU constants (GPUBufferUsage, GPUMapMode, ...) as globals: both are
 *   installed from Dawn's `create(options)` / `globals` before it is loaded.
 * - dataSync()/arraySync() of a GPU-resident tensor throw ("OffscreenCanvas is not defined"), and so
 *   does moving one to another backend: callers read with `await t.data()`.
 * - Dawn's instance must stay referenced while work is pending (a dropped one lets pending reads
 *   never resolve); releaseWebGpu() drops it so nothing outlives the process's work.
 *
 * Adapter policy: auto-selection takes a hardware adapter only. A software one (SwiftShader,
 * llvmpipe/lavapipe, WARP: `isFallbackAdapter`, or its info naming one) runs ConvNeXt far slower
 * than the wasm backend, so it is used only when 'webgpu' is asked for by name. Which adapter Dawn
 * offers passes through Dawn's options (`adapter=<name>`, `backend=vulkan|metal|d3d12|...`), the
 * `CONVNEXT_WEBGPU_ADAPTER` variable (becomes `adapter=<name>`) and, for Vulkan, `VK_ICD_FILENAMES`.
 */
import * as fs from 'fs';
import * as path from 'path';
import { pathToFileURL } from 'url';
import * as tf from '@tensorflow/tfjs-core';
import { settings } from '../env';

/** The npm package of Dawn's Node bindings (ESM only). */
export const DAWN_PACKAGE = 'webgpu';
/** The tfjs backend package (CommonJS main). */
export const WEBGPU_BACKEND_PACKAGE = '@tensorflow/tfjs-backend-webgpu';

/** What we read of a GPUAdapterInfo (lib has no DOM types; fields per the WebGPU spec). */
interface GpuAdapterInfoLike {
  vendor?: string;
  architecture?: string;
  device?: string;
  description?: string;
  isFallbackAdapter?: boolean;
}

interface GpuAdapterLike {
  info?: GpuAdapterInfoLike;
  /** Older spelling (before it moved into info). */
  isFallbackAdapter?: boolean;
}

/** navigator.gpu as Dawn's create() returns it. */
export interface GpuLike {
  requestAdapter(options?: { powerPreference?: 'high-performance' | 'low-power' }): Promise<GpuAdapterLike | null>;
}

/** The `webgpu` package's exports. */
export interface DawnModule {
  create(options: string[]): GpuLike;
  globals: Record<string, unknown>;
}

/** The adapter the webgpu backend runs on (BackendInfo.adapter). */
export interface AdapterReport {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** isFallbackAdapter, or the info names a software rasteriser. */
  software: boolean;
  /** Dawn options it was created with (after CONVNEXT_WEBGPU_ADAPTER). */
  dawnOptions: string[];
}

/** A real import() in CommonJS output: tsc would rewrite a literal `import(s)` to require(s). */
const dynamicImport = new Function('specifier', 'return import(specifier)') as (specifier: string) => Promise<unknown>;

/**
 * Imports an ESM-only package, resolved from this package (as require would), so a bare name works
 * whatever the process's working directory.
 */
export function importEsm(pkg: string): Promise<unknown> {
  let resolved: string;
  try {
    resolved = require.resolve(pkg);
  } catch (e) {
    return Promise.reject(e);
  }
  return dynamicImport(pathToFileURL(path.resolve(resolved)).href);
}

/** Dawn options for create(): the given ones, plus `adapter=$CONVNEXT_WEBGPU_ADAPTER` unless one is given. */
export function dawnOptions(given: readonly string[] = []): string[] {
  const out = [...given];
  const adapter = settings.webgpuAdapter();
  if (adapter && !out.some((o) => o.startsWith('adapter='))) out.push(`adapter=${adapter}`);
  return out;
}

const SOFTWARE = /swiftshader|llvmpipe|lavapipe|softpipe|microsoft basic render|\bwarp\b/i;

/** Whether an adapter is a software rasteriser (the WebGPU flag, or its info naming one). */
export function isSoftwareAdapter(adapter: GpuAdapterLike): boolean {
  const info = adapter.info ?? {};
  if (info.isFallbackAdapter === true || adapter.isFallbackAdapter === true) return true;
  return SOFTWARE.test([info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(' '));
}

function describe(a: AdapterReport): string {
  const words = [a.description, a.vendor, a.architecture, a.device].filter(Boolean);
  return words.length ? [...new Set(words)].join(' / ') : 'unnamed adapter';
}

/**
 * Linux GPU device nodes a hardware adapter would come through: DRM render nodes (AMD, Intel,
 * Mesa), NVIDIA's, WSL2's /dev/dxg. Auto mode looks here before waking Dawn: with none there is no
 * hardware adapter to find, and Dawn's driver probing (which writes warnings to stderr natively)
 * is skipped. Other platforms: not checked (null).
 */
export function gpuDeviceNodes(): string[] | null {
  if (process.platform !== 'linux') return null;
  const list = (dir: string, re: RegExp) => {
    try {
      return fs
        .readdirSync(dir)
        .filter((f) => re.test(f))
        .map((f) => path.join(dir, f));
    } catch {
      return [];
    }
  };
  return [...list('/dev/dri', /^renderD\d+$/), ...list('/dev', /^(nvidia\d+|dxg)$/)];
}

/** The webgpu request's state in this process: Dawn's instance while installed. */
let installed: { gpu: GpuLike; key: string; adapter: AdapterReport } | null = null;

interface NavigatorHolder {
  navigator?: { gpu?: unknown };
}

function setNavigatorGpu(gpu: GpuLike | undefined): void {
  const g = globalThis as unknown as NavigatorHolder;
  if (gpu === undefined) {
    if (g.navigator && 'gpu' in g.navigator) delete g.navigator.gpu;
    return;
  }
  // Node >= 21 has a read-only globalThis.navigator object; Node 20 has none.
  if (g.navigator === undefined) Object.defineProperty(globalThis, 'navigator', { value: {}, configurable: true, writable: true });
  Object.defineProperty(g.navigator, 'gpu', { value: gpu, configurable: true, writable: true, enumerable: true });
}

/**
 * Makes `navigator.gpu` (Dawn) and the WebGPU globals available for tfjs-backend-webgpu, and checks
 * the adapter Dawn offers against the policy. Idempotent for the same options.
 *
 * @param load     imports a package (`webgpu` needs an ESM import; injectable for tests)
 * @param options  Dawn's create() options (already merged with CONVNEXT_WEBGPU_ADAPTER)
 * @param allowSoftware  false in auto mode: a software adapter is refused with the reason
 * @param deviceNodes    auto mode on Linux: GPU device nodes present (gpuDeviceNodes; none: refused
 *                       without loading Dawn); tests with an injected Dawn leave it out
 * @returns the adapter report
 * @throws Error naming what is missing (no adapter, software adapter in auto mode)
 */
export async function installWebGpu(
  load: (pkg: string) => unknown,
  options: string[],
  allowSoftware: boolean,
  deviceNodes: () => string[] | null = () => null,
): Promise<AdapterReport> {
  const key = options.join('\n');
  if (!allowSoftware && !(installed && installed.key === key) && deviceNodes()?.length === 0) {
    throw new Error('no GPU device node (/dev/dri/renderD*, /dev/nvidia*, /dev/dxg): no hardware adapter to find');
  }
  if (installed && installed.key === key) {
    if (installed.adapter.software && !allowSoftware) throw new Error(softwareReason(installed.adapter));
    return installed.adapter;
  }
  // Auto mode asks on every initBackend(): the adapter it refused is remembered instead of
  // re-creating Dawn (per loader, so an injected one in tests never answers for the real one).
  if (!allowSoftware && refused?.key === key && refused.load === load) throw new Error(refused.reason);
  return install(load, options, allowSoftware, key);
}

let refused: { key: string; load: (pkg: string) => unknown; reason: string } | null = null;

async function install(load: (pkg: string) => unknown, options: string[], allowSoftware: boolean, key: string): Promise<AdapterReport> {
  const dawn = (await load(DAWN_PACKAGE)) as Partial<DawnModule>;
  if (typeof dawn.create !== 'function') throw new Error(`${DAWN_PACKAGE} loaded but has no create()`);
  // Dawn prints "no suitable backends found" / adapter lists as an exception from requestAdapter.
  const gpu = dawn.create(options);
  let adapter: GpuAdapterLike | null;
  try {
    adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  } catch (e) {
    throw new Error(
      `Dawn could not list adapters (options [${options.join(', ')}]): ${(e instanceof Error ? e.message : String(e)).replace(/\s*\n\s*/g, ' ')}`,
    );
  }
  if (!adapter) {
    const reason =
      'Dawn found no WebGPU adapter (Linux: a Vulkan driver and libvulkan1; software Vulkan: VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json)';
    if (!allowSoftware) refused = { key, load, reason };
    throw new Error(reason);
  }
  const info = adapter.info ?? {};
  const report: AdapterReport = {
    vendor: info.vendor ?? '',
    architecture: info.architecture ?? '',
    device: info.device ?? '',
    description: info.description ?? '',
    software: isSoftwareAdapter(adapter),
    dawnOptions: [...options],
  };
  if (report.software && !allowSoftware) {
    refused = { key, load, reason: softwareReason(report) };
    throw new Error(refused.reason);
  }
  for (const [k, v] of Object.entries(dawn.globals ?? {})) {
    if (!(k in globalThis)) Object.defineProperty(globalThis, k, { value: v, configurable: true, writable: true });
  }
  setNavigatorGpu(gpu);
  installed = { gpu, key, adapter: report };
  return report;
}

function softwareReason(a: AdapterReport): string {
  return `only a software adapter (${describe(a)}) is available: far slower than wasm, so auto-selection skips it; ask for it with --backend webgpu / CONVNEXT_BACKEND=webgpu`;
}

/** The adapter the installed webgpu backend uses, or null when none is installed. */
export function webGpuAdapter(): AdapterReport | null {
  return installed?.adapter ?? null;
}

/**
 * Lets go of Dawn: disposes the tfjs 'webgpu' backend (its buffers and device) if it was created
 * and drops `navigator.gpu`, so no GPU handle keeps the process alive. Call when done with the GPU
 * (the CLI does at its end); a later initBackend({ backend: 'webgpu' }) creates a new instance.
 * Tensors still on 'webgpu' become unusable.
 */
export function releaseWebGpu(): void {
  if (!installed) return;
  const factory = tf.findBackendFactory('webgpu');
  if (factory) {
    // removeBackend disposes the instance and forgets the factory; the package registers it only
    // once (at import), so it is put back for a later initBackend.
    tf.removeBackend('webgpu');
    tf.registerBackend('webgpu', factory, WEBGPU_PRIORITY);
  }
  setNavigatorGpu(undefined);
  installed = null;
}

/** tfjs-backend-webgpu's registration priority (4.22: 3, above wasm's 2). */
const WEBGPU_PRIORITY = 3;
