/** Progress bars on stderr (only on a terminal, so logs and pipes stay clean). */
import { SingleBar } from 'cli-progress';
import { LoadProgress } from '../factory/load';

export interface Bar {
  update(value: number, payload?: Record<string, unknown>): void;
  stop(): void;
}

const NOOP: Bar = { update: () => undefined, stop: () => undefined };

/** A bar over `total` units, or a no-op off-terminal / when `total` is 1; `extra` adds payload fields to the line. */
export function progressBar(total: number, label: string, unit = 'img', extra = ''): Bar {
  if (!process.stderr.isTTY || total <= 1) return NOOP;
  const bar = new SingleBar({
    stream: process.stderr,
    format: `${label} [{bar}] {value}/{total} ${unit}${extra} | {rate} ${unit}/s | ETA {eta}s`,
    hideCursor: true,
    clearOnComplete: true,
  });
  const t0 = Date.now();
  bar.start(total, 0, { rate: '0.0' });
  return {
    update: (v, payload) => bar.update(v, { rate: (v / Math.max(1e-3, (Date.now() - t0) / 1000)).toFixed(1), ...payload }),
    stop: () => bar.stop(),
  };
}

/**
 * Reports model loading: which pretrained tag a bare architecture stands for (always, on stderr),
 * and, on a terminal, a byte-download bar and the conversion step.
 */
export function downloadBar(): { onProgress: (p: LoadProgress) => void; stop(): void } {
  let bar: SingleBar | null = null;
  return {
    onProgress: (p) => {
      if (p.status === 'default-tag') {
        process.stderr.write(
          `${p.arch}: using its default pretrained weights ${p.tag} (name arch.tag to choose others; \`convnext models ${p.arch}\` lists them)\n`,
        );
        return;
      }
      if (!process.stderr.isTTY) return;
      if (p.status === 'download' && typeof p.loaded === 'number') {
        if (!bar) {
          bar = new SingleBar({ stream: process.stderr, format: `download ${p.file ?? ''} [{bar}] {percentage}% {value}/{total} MB`, hideCursor: true });
          bar.start(+((p.total ?? 0) / 1e6).toFixed(1), 0);
        }
        bar.update(+(p.loaded / 1e6).toFixed(1));
      } else if (p.status === 'convert') {
        bar?.stop();
        bar = null;
        process.stderr.write(`converting ${p.file ?? ''}...\n`);
      }
    },
    stop: () => bar?.stop(),
  };
}
