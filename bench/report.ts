/**
 * The benchmark table of bench/run.sh as data: which configurations to run, a rough time estimate,
 * and the report (JSON + markdown) with ratios to the peers measured in the same run:
 *
 *   naive      op-by-op TF.js composition (shared/peers/naive-tfjs.js), wasm, one thread
 *   PyTorch    torchvision model, 1 and 2 intra-op threads (shared/peers/peer-bench.sh)
 *   ORT        ONNX Runtime for Node.js on the exported model, 1 and 2 threads
 *
 * A ratio is ours ms/img / theirs ms/img: below 1 we are faster. Every figure is the best of its
 * passes, per image.
 */
import { MODEL_CONFIGS, countMacs } from '../src/model/configs';
import { BenchResult, MachineInfo } from '../src/perf/benchmark';

/** The bench scripts' short names: 'tiny' -> 'convnext_tiny' (registry names pass through). */
export function resolveArch(arch: string): string {
  if (MODEL_CONFIGS[arch]) return arch;
  if (MODEL_CONFIGS[`convnext_${arch}`]) return `convnext_${arch}`;
  return arch; // runBenchmark's name rule reports it
}

export interface PlannedRun {
  arch: string;
  batch: number;
  backend: string;
  workers: number;
  /** wasm threads of a model in this thread (1 in pool workers). */
  threads: number;
}

export interface PlanOptions {
  archs: string[];
  batches: number[];
  backends: string[];
  /** Workers of the multi-worker runs (all cores). */
  cores: number;
  /** Archs this large or larger run on wasm only (the pure-JS cpu backend is minutes per pass). Default 'convnext_base'. */
  wasmOnlyFrom?: string;
}

/**
 * arch x batch x backend, each with 1 worker and 1 thread; on wasm also one model with a thread per core
 * (the threaded build); plus all cores as workers for batches > 1; big archs on wasm only.
 */
export function benchPlan(o: PlanOptions): PlannedRun[] {
  const heavy = MODEL_CONFIGS[resolveArch(o.wasmOnlyFrom ?? 'convnext_base')];
  const heavyMacs = heavy ? countMacs(heavy) : Infinity;
  const runs: PlannedRun[] = [];
  for (const a of o.archs) {
    const arch = resolveArch(a);
    const c = MODEL_CONFIGS[arch];
    for (const batch of o.batches) {
      for (const backend of o.backends) {
        if (backend !== 'wasm' && c && countMacs(c) >= heavyMacs) continue;
        runs.push({ arch, batch, backend, workers: 1, threads: 1 });
        if (backend === 'wasm' && o.cores > 1) runs.push({ arch, batch, backend, workers: 1, threads: o.cores });
        if (batch > 1 && o.cores > 1) runs.push({ arch, batch, backend, workers: o.cores, threads: 1 });
      }
    }
  }
  return runs;
}

/** Measured ms per GMAC of one image on each backend (from a calibration pass). */
export type Calibration = Record<string, number>;

function msPerImage(arch: string, backend: string, calib: Calibration): number {
  const c = MODEL_CONFIGS[arch];
  return (calib[backend] ?? calib.wasm ?? 100) * (c ? countMacs(c) / 1e9 : 1);
}

/**
 * Rough seconds of one of our runs: (warmup + reps) passes of batch x workers images at the
 * calibrated speed, workers scaling linearly, plus process and pool start-up.
 */
export function estimateRunSeconds(r: PlannedRun, calib: Calibration, o: { reps: number; warmup: number }): number {
  return 2 + (r.workers > 1 ? r.workers : 0) + ((o.reps + o.warmup) * r.batch * msPerImage(r.arch, r.backend, calib)) / 1000;
}

/**
 * Rough seconds for the plan; with peers: the naive model like ours on wasm, PyTorch and ORT at 1
 * and 2 threads each like ours on wasm, plus 30 s per ONNX export and for the one-time
 * onnxruntime-node install.
 */
export function estimateSeconds(plan: PlannedRun[], calib: Calibration, o: { reps: number; warmup: number; peers: boolean; peerArchs?: string[] }): number {
  let s = 0;
  for (const r of plan) s += estimateRunSeconds(r, calib, o);
  if (o.peers) {
    const pairs = new Set(plan.map((r) => `${r.arch} ${r.batch}`));
    const torchArchs = new Set(o.peerArchs ?? []);
    for (const p of pairs) {
      const [arch, b] = p.split(' ');
      const once = ((o.reps + o.warmup) * +b * msPerImage(arch, 'wasm', calib)) / 1000;
      s += 2 + once; // naive
      if (torchArchs.has(arch)) s += 10 + 4 * once;
    }
    s += 30 * (torchArchs.size + 1);
  }
  return Math.round(s);
}

/** A line the peers' scripts print. */
export interface PeerLine {
  peer?: string;
  impl?: string;
  arch: string;
  batch: number;
  threads?: number;
  backend?: string;
  ms_per_img: number;
}

export interface ReportRow extends Pick<BenchResult, 'arch' | 'batch' | 'backend' | 'workers' | 'threads' | 'ms_per_img' | 'images_per_s' | 'peak_rss_mb'> {
  /** Process CPU time / wall time (~workers when each worker had a core). */
  cpu_util: number | null;
  /** ours / naive TF.js (wasm rows only: the naive model runs on wasm). */
  vs_naive: number | null;
  /** The naive run's batch the ratio is against: this row's, or 1 when the naive run at this batch failed. */
  naive_batch: number | null;
  vs_pytorch_1t: number | null;
  vs_pytorch_2t: number | null;
  vs_ort_1t: number | null;
  vs_ort_2t: number | null;
}

export interface Report {
  machine: MachineInfo & Record<string, unknown>;
  rows: ReportRow[];
  ours: BenchResult[];
  peers: PeerLine[];
  notes: string[];
}

const ratio = (a: number, b: number | undefined): number | null => (b && b > 0 ? +(a / b).toFixed(2) : null);

/** Sorts the collected lines into ours, peers and notes, and computes the ratios. */
export function buildReport(lines: Record<string, unknown>[], machine: Report['machine']): Report {
  const ours: BenchResult[] = [];
  const peers: PeerLine[] = [];
  const notes: string[] = [];
  for (const l of lines) {
    if (typeof l.note === 'string') notes.push(l.note);
    else if (typeof l.peer === 'string' || l.impl === 'naive-tfjs') peers.push({ ...(l as unknown as PeerLine), arch: resolveArch(String(l.arch)) });
    else if (typeof l.ms_per_img === 'number' && typeof l.workers === 'number') ours.push(l as unknown as BenchResult);
  }
  const find = (arch: string, batch: number, pred: (p: PeerLine) => boolean): number | undefined =>
    peers.find((p) => p.arch === arch && p.batch === batch && pred(p))?.ms_per_img;
  const rows = ours.map((r): ReportRow => {
    const isNaive = (p: PeerLine) => p.impl === 'naive-tfjs' && p.backend === r.backend;
    // The naive script runs out of wasm memory at batch 16 for tiny and up: then per image at batch 1.
    const naiveBatch = find(r.arch, r.batch, isNaive) !== undefined ? r.batch : find(r.arch, 1, isNaive) !== undefined ? 1 : null;
    const naive = naiveBatch === null ? undefined : find(r.arch, naiveBatch, isNaive);
    const pt = (t: number) => find(r.arch, r.batch, (p) => !!p.peer?.startsWith('pytorch') && p.threads === t);
    const ort = (t: number) => find(r.arch, r.batch, (p) => !!p.peer?.startsWith('onnxruntime') && p.threads === t);
    return {
      arch: r.arch,
      batch: r.batch,
      backend: r.backend,
      workers: r.workers,
      threads: r.threads ?? null,
      ms_per_img: r.ms_per_img,
      images_per_s: r.images_per_s,
      peak_rss_mb: r.peak_rss_mb,
      cpu_util: r.cpu_util ?? null,
      vs_naive: ratio(r.ms_per_img, naive),
      naive_batch: naive === undefined ? null : naiveBatch,
      vs_pytorch_1t: ratio(r.ms_per_img, pt(1)),
      vs_pytorch_2t: ratio(r.ms_per_img, pt(2)),
      vs_ort_1t: ratio(r.ms_per_img, ort(1)),
      vs_ort_2t: ratio(r.ms_per_img, ort(2)),
    };
  });
  return { machine, rows, ours, peers, notes };
}

function table(head: string[], body: (string | number | null)[][]): string {
  const cell = (v: string | number | null): string => (v === null ? '–' : String(v));
  return [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...body.map((r) => `| ${r.map(cell).join(' | ')} |`)].join('\n');
}

/** The report as markdown: machine, our table with ratios, the peers' raw figures, notes. */
export function reportMarkdown(r: Report): string {
  const m = r.machine;
  const out = [
    `# convnext-tfjs inference speed — ${m.host}`,
    '',
    `${m.cpu}, ${m.cores} cores, ${m.memory_gb} GB; ${m.platform}; Node ${m.node}, TF.js ${m.tfjs}.` +
      (m.date ? ` Run ${m.date}` : '') +
      (m.load_avg_start !== undefined ? `; load average at start ${m.load_avg_start}, at end ${m.load_avg_end}.` : '.'),
    '',
    'ms/img: best pass / images (random weights, 224x224). Ratios: ours ms/img ÷ theirs (< 1: ours faster); ' +
      '"naive" is an op-by-op TF.js ConvNeXt on wasm, one thread. threads: wasm threads per model (> 1: the ' +
      'threaded build). workers > 1: model replicas in worker threads, one thread each, batch images per worker call. CPU util: process CPU time / wall time over the timed passes (~workers when ' +
      'every worker had a core to itself; lower: the machine was busy).',
    '',
    table(
      [
        'arch',
        'batch',
        'backend',
        'workers',
        'threads',
        'ms/img',
        'img/s',
        'CPU util',
        'peak RSS MB',
        '÷ naive',
        '÷ PyTorch 1t',
        '÷ PyTorch 2t',
        '÷ ORT 1t',
        '÷ ORT 2t',
      ],
      r.rows.map((x) => [
        x.arch,
        x.batch,
        x.backend,
        x.workers,
        x.threads,
        x.ms_per_img,
        x.images_per_s,
        x.cpu_util,
        x.peak_rss_mb,
        x.vs_naive === null || x.naive_batch === x.batch ? x.vs_naive : `${x.vs_naive} (vs batch ${x.naive_batch})`,
        x.vs_pytorch_1t,
        x.vs_pytorch_2t,
        x.vs_ort_1t,
        x.vs_ort_2t,
      ]),
    ),
    '',
    '## Peers (same run)',
    '',
    r.peers.length
      ? table(
          ['arch', 'batch', 'implementation', 'threads', 'ms/img'],
          r.peers.map((p) => [p.arch, p.batch, p.peer ?? `${p.impl} (${p.backend})`, p.threads ?? 1, p.ms_per_img]),
        )
      : 'None measured.',
  ];
  if (r.notes.length) out.push('', '## Notes', '', ...r.notes.map((n) => `- ${n}`));
  return out.join('\n') + '\n';
}
