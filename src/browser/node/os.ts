/** The browser build's `os`: the two facts the library asks of it (byte order, core count). */
const LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export function endianness(): 'LE' | 'BE' {
  return LE ? 'LE' : 'BE';
}

export function availableParallelism(): number {
  return (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency ?? 1;
}

export function cpus(): { model: string }[] {
  return Array.from({ length: availableParallelism() }, () => ({ model: 'browser' }));
}

export function homedir(): string {
  return '/';
}

export function tmpdir(): string {
  return '/tmp';
}
