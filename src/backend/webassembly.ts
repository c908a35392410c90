/**
 * The WebAssembly global, typed as far as this package uses it (the ES2022 lib has no WebAssembly
 * types, and the DOM lib would bring a browser's globals into a Node library).
 */
export type WasmModule = object;
export type WasmInstance = { exports: unknown };

export interface WebAssemblyApi {
  Module: new (bytes: Uint8Array) => WasmModule;
  Instance: new (module: WasmModule, imports: object) => WasmInstance;
  Memory: new (d: { initial: number; maximum: number; shared: boolean }) => object;
  instantiate(bytes: Uint8Array, imports: object): Promise<{ instance: WasmInstance; module: WasmModule }>;
}

/** undefined in a runtime without WebAssembly. */
export const webAssembly = (globalThis as unknown as { WebAssembly?: WebAssemblyApi }).WebAssembly;
