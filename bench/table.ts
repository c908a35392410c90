/**
 * Helper of bench/run.sh (compiled to dist/bench/table.js):
 *
 *   node dist/bench/table.js plan <raw.jsonl>     appends a meta line (machine, plan, estimate) to raw,
 *                                                 prints one "arch batch backend workers threads" line per run
 *   node dist/bench/table.js render <raw.jsonl> <out-prefix>
 *                                                 writes <out-prefix>.json and .md, prints the markdown
 *
 * Settings come from the environment run.sh passes: ARCHS, BATCHES, BACKENDS (default: every
 * available one), REPS, WARMUP, SKIP_PEERS, MAX_RUN_S (a run on a backend other than wasm, e.g. the
 * pure-JS cpu one, estimated longer is skipped with a note; default 150, 0 = no limit; wasm runs,
 * the headline, always run).
 */
import * as fs from 'fs';
import * as os from 'os';
import { availableBackends, initBackend } from '../src/backend';
import { machineInfo, runBenchmark } from '../src/perf/benchmark';
import { Calibration, benchPlan, buildReport, estimateRunSeconds, estimateSeconds, reportMarkdown } from './report';
import { MODEL_CONFIGS, countMacs } from '../src/model/configs';
import { writeFileAtomic } from '../src/util/fs';

const env = (k: string, d: string): string => process.env[k]?.trim() || d;
const words = (s: string): string[] => s.split(/[\s,]+/).filter(Boolean);
const loadAvg = (): string =>
  os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');

/** torchvision has tiny, small, base, large only. */
const TORCHVISION = ['convnext_tiny', 'convnext_small', 'convnext_base', 'convnext_large'];

async function plan(raw: string): Promise<void> {
  await initBackend({ backend: 'wasm' }); // something to restore after probing
  const backends = process.env.BACKENDS ? words(process.env.BACKENDS) : await availableBackends();
  const reps = +env('REPS', '3');
  const warmup = +env('WARMUP', '1');
  const peers = env('SKIP_PEERS', '0') !== '1';
  const maxRun = +env('MAX_RUN_S', '150');
  const all = benchPlan({
    archs: words(env('ARCHS', 'atto tiny base')),
    batches: words(env('BATCHES', '1 16')).map(Number),
    backends,
    cores: os.availableParallelism(),
  });
  // Calibration: one small pass per backend (ms per GMAC), so the estimate fits this machine.
  const calib: Calibration = {};
  for (const b of backends) {
    const r = await runBenchmark({ arch: 'convnext_atto', batch: 1, backend: b, reps: 1, warmup: 1, imageSize: b === 'cpu' ? 64 : 224 });
    calib[b] = r.ms_per_img / r.gmacs_per_img;
  }
  const skipped = all.filter((r) => maxRun > 0 && r.backend !== 'wasm' && estimateRunSeconds(r, calib, { reps, warmup }) > maxRun);
  const runs = all.filter((r) => !skipped.includes(r));
  for (const r of skipped) {
    const note = `skipped ${r.arch} batch ${r.batch} ${r.backend} workers ${r.workers} threads ${r.threads}: estimated ${Math.round(estimateRunSeconds(r, calib, { reps, warmup }))} s > MAX_RUN_S ${maxRun}`;
    fs.appendFileSync(raw, JSON.stringify({ note }) + '\n');
    process.stderr.write(note + '\n');
  }
  const archs = [...new Set(runs.map((r) => r.arch))];
  const seconds = estimateSeconds(runs, calib, { reps, warmup, peers, peerArchs: archs.filter((a) => TORCHVISION.includes(a)) });
  const meta = {
    meta: {
      ...machineInfo(),
      date: new Date().toISOString(),
      load_avg_start: loadAvg(),
      backends,
      reps,
      warmup,
      calibration_ms_per_gmac: Object.fromEntries(Object.entries(calib).map(([k, v]) => [k, +v.toFixed(1)])),
      estimate_s: seconds,
      runs: runs.length,
    },
  };
  fs.appendFileSync(raw, JSON.stringify(meta) + '\n');
  const gmacs = (a: string): string => (countMacs(MODEL_CONFIGS[a]) / 1e9).toFixed(2);
  process.stderr.write(
    `${runs.length} configurations (${archs.map((a) => `${a} ${gmacs(a)} GMACs`).join(', ')}) on ${backends.join(', ')}, ` +
      `reps ${reps} + warmup ${warmup}${peers ? ', with peers' : ''}\n` +
      `load average ${meta.meta.load_avg_start}${os.loadavg()[0] > 0.5 * os.availableParallelism() ? '  (busy machine: figures will be noisy)' : ''}\n` +
      `estimated time: ~${Math.ceil(seconds / 60)} min (${seconds} s; calibration ${JSON.stringify(meta.meta.calibration_ms_per_gmac)} ms/GMAC)\n`,
  );
  for (const r of runs) process.stdout.write(`${r.arch} ${r.batch} ${r.backend} ${r.workers} ${r.threads}\n`);
}

function render(raw: string, prefix: string): void {
  const lines = fs
    .readFileSync(raw, 'utf8')
    .split('\n')
    .filter((l) => l.trim().startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  const meta = (lines.find((l) => l.meta)?.meta ?? machineInfo()) as ReturnType<typeof machineInfo> & Record<string, unknown>;
  const report = buildReport(lines, { ...meta, load_avg_end: loadAvg(), finished: new Date().toISOString() });
  const md = reportMarkdown(report);
  writeFileAtomic(`${prefix}.json`, JSON.stringify(report, null, 2) + '\n');
  writeFileAtomic(`${prefix}.md`, md);
  process.stdout.write(md);
}

async function main(argv: string[]): Promise<void> {
  const [cmd, ...args] = argv;
  if (cmd === 'plan' && args.length === 1) return plan(args[0]);
  if (cmd === 'render' && args.length === 2) return render(args[0], args[1]);
  throw new Error('usage: table.js plan <raw.jsonl> | render <raw.jsonl> <out-prefix>');
}

main(process.argv.slice(2)).catch((e: Error) => {
  process.stderr.write(`error: ${e.message}\n`);
  process.exitCode = 1;
});
