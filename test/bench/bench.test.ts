/**
 * The benchmark's plumbing, not its speed (figures come from bench/run.sh, never from tests):
 * result fields, nothing left behind, the plan, the ratios, and `convnext bench --json`.
 */
import * as tf from '@tensorflow/tfjs-core';
import { getThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import { expect } from 'chai';
import { Command } from 'commander';
import { runBenchmark } from '../../src/perf/benchmark';
import { resolveArch } from '../../bench/report';
import { benchPlan, buildReport, reportMarkdown } from '../../bench/report';
import { registerBench } from '../../src/cli/bench';
import { ConfigError } from '../../src/errors';
import { useBackend } from '../helpers';

describe('benchmark', function () {
  this.timeout(120_000);
  before(() => useBackend('wasm'));

  it('times one configuration in this thread and leaves no tensors', async () => {
    const before = tf.memory().numTensors;
    const phases: string[] = [];
    const r = await runBenchmark({
      arch: 'convnext_atto',
      batch: 2,
      backend: 'wasm',
      imageSize: 32,
      reps: 2,
      warmup: 1,
      onProgress: (e) => phases.push(e.phase),
    });
    expect(r).to.include({
      arch: 'convnext_atto',
      backend: 'wasm',
      batch: 2,
      workers: 1,
      threads: getThreadsCount(),
      image_size: 32,
      reps: 2,
      warmup: 1,
      params: 3_695_520,
      pool_ms: 0,
    });
    expect(r.pass_ms).to.have.length(2);
    expect(r.ms_per_img).to.be.closeTo(Math.min(...r.pass_ms) / 2, 0.06); // pass_ms are rounded to 0.1
    expect(r.ms_per_img).to.be.above(0).and.at.most(r.ms_per_img_median);
    // ms_per_img is rounded to 0.01, so 1000 / ms_per_img is only known to 1000 * 0.005 / ms^2.
    expect(r.images_per_s).to.be.closeTo(1000 / r.ms_per_img, (1000 * 0.0051) / r.ms_per_img ** 2 + 0.006);
    expect(r.weights_mb).to.equal(14.1);
    expect(r.peak_rss_mb).to.be.above(10);
    expect(r.num_tensors).to.equal(before);
    expect(r.cpu_util).to.be.above(0);
    expect(phases).to.deep.equal(['created', 'warmup', 'rep', 'rep']);
  });

  it('times rounds of one call per worker with a pool', async () => {
    const r = await runBenchmark({ arch: 'convnext_atto', batch: 1, workers: 2, backend: 'wasm', imageSize: 32, reps: 1, warmup: 0 });
    expect(r).to.include({ workers: 2, batch: 1, backend: 'wasm' });
    expect(r.pool_ms).to.be.above(0);
    expect(r.ms_per_img).to.be.closeTo(r.pass_ms[0] / 2, 0.06);
    expect(r.num_tensors).to.equal(tf.memory().numTensors);
  });

  it('checks its options', async () => {
    expect(resolveArch('tiny')).to.equal('convnext_tiny');
    expect(resolveArch('convnextv2_atto')).to.equal('convnextv2_atto');
    for (const bad of [{ batch: 0 }, { batch: 1, workers: 1.5 }, { batch: 1, reps: 0 }, { batch: 1, warmup: -1 }]) {
      const e = await runBenchmark({ arch: 'convnext_atto', ...bad }).then(
        () => null,
        (x: unknown) => x,
      );
      expect(e, JSON.stringify(bad)).to.be.instanceOf(ConfigError);
    }
    const e = await runBenchmark({ arch: 'tinny', batch: 1, backend: 'wasm' }).then(
      () => null,
      (x: Error) => x,
    );
    expect(e)
      .to.be.instanceOf(ConfigError)
      .with.property('message')
      .that.matches(/unknown model 'tinny'/);
  });

  it('plans arch x batch x backend, all cores for batches > 1, base on wasm only', () => {
    const plan = benchPlan({ archs: ['atto', 'base'], batches: [1, 16], backends: ['wasm', 'cpu'], cores: 4 });
    expect(plan.map((r) => `${r.arch} ${r.batch} ${r.backend} ${r.workers} ${r.threads}`)).to.deep.equal([
      'convnext_atto 1 wasm 1 1',
      'convnext_atto 1 wasm 1 4',
      'convnext_atto 1 cpu 1 1',
      'convnext_atto 16 wasm 1 1',
      'convnext_atto 16 wasm 1 4',
      'convnext_atto 16 wasm 4 1',
      'convnext_atto 16 cpu 1 1',
      'convnext_atto 16 cpu 4 1',
      'convnext_base 1 wasm 1 1',
      'convnext_base 1 wasm 1 4',
      'convnext_base 16 wasm 1 1',
      'convnext_base 16 wasm 1 4',
      'convnext_base 16 wasm 4 1',
    ]);
    expect(benchPlan({ archs: ['tiny'], batches: [16], backends: ['wasm'], cores: 1 })).to.have.length(1);
  });

  it('reports ratios to the peers of the same arch and batch', () => {
    const ours = {
      arch: 'convnext_tiny',
      batch: 1,
      backend: 'wasm',
      workers: 1,
      threads: 1,
      ms_per_img: 100,
      images_per_s: 10,
      peak_rss_mb: 300,
      cpu_util: 0.9,
    };
    const report = buildReport(
      [
        { meta: {} },
        ours,
        { ...ours, backend: 'cpu', ms_per_img: 1000 },
        { ...ours, batch: 16, workers: 2, ms_per_img: 50 },
        { impl: 'naive-tfjs', arch: 'tiny', batch: 1, backend: 'wasm', ms_per_img: 125 },
        { peer: 'pytorch-2.1', arch: 'convnext_tiny', batch: 1, threads: 1, ms_per_img: 50 },
        { peer: 'pytorch-2.1', arch: 'convnext_tiny', batch: 1, threads: 2, ms_per_img: 40 },
        { peer: 'onnxruntime-node', arch: 'convnext_tiny', batch: 1, threads: 1, ms_per_img: 80 },
        { peer: 'pytorch-2.1', arch: 'convnext_tiny', batch: 16, threads: 1, ms_per_img: 1 },
        { note: 'no ORT 2 threads' },
      ],
      { host: 'h', cpu: 'c', cores: 2, memory_gb: 4, platform: 'p', node: 'v20', tfjs: '4.22.0' },
    );
    expect(report.rows[0]).to.include({ vs_naive: 0.8, naive_batch: 1, vs_pytorch_1t: 2, vs_pytorch_2t: 2.5, vs_ort_1t: 1.25, vs_ort_2t: null });
    expect(report.rows[1]).to.include({ backend: 'cpu', vs_naive: null, naive_batch: null, vs_pytorch_1t: 20 });
    // No naive run at batch 16 (it runs out of memory there): the ratio is per image against batch 1.
    expect(report.rows[2]).to.include({ batch: 16, vs_naive: 0.4, naive_batch: 1, vs_pytorch_1t: 50 });
    expect(report.peers).to.have.length(5);
    expect(report.notes).to.deep.equal(['no ORT 2 threads']);
    const md = reportMarkdown(report);
    expect(md).to.contain('| convnext_tiny | 1 | wasm | 1 | 1 | 100 | 10 | 0.9 | 300 | 0.8 | 2 | 2.5 | 1.25 | – |');
    expect(md).to.contain('| convnext_tiny | 16 | wasm | 2 | 1 | 50 | 10 | 0.9 | 300 | 0.4 (vs batch 1) | 50 |');
    expect(md).to.contain('- no ORT 2 threads');
  });

  it('`bench --json` prints the result as the last line; the summary otherwise', async () => {
    const out: string[] = [];
    const write = process.stdout.write;
    const program = new Command().option('--backend <name>').exitOverride();
    registerBench(program);
    process.stdout.write = ((s: string) => out.push(s) > 0) as typeof process.stdout.write;
    try {
      await program.parseAsync(['--backend', 'wasm', 'bench', '--arch', 'convnext_atto', '--image-size', '32', '--reps', '1', '--warmup', '0', '--json'], {
        from: 'user',
      });
      await program.parseAsync(['bench', '--arch', 'convnext_atto', '--batch', '2', '--image-size', '32', '--reps', '1', '--backend', 'wasm'], {
        from: 'user',
      });
    } finally {
      process.stdout.write = write;
    }
    const lines = out[0].trim().split('\n');
    const j = JSON.parse(lines[lines.length - 1]);
    expect(j).to.include({ arch: 'convnext_atto', backend: 'wasm', batch: 1, workers: 1 });
    expect(j.ms_per_img).to.be.a('number');
    expect(out[1]).to.match(/^convnext_atto {2}wasm {2}batch 2, \d+ threads? {2}32x32/);
    expect(out[1]).to.match(/ms\/img best/);
  });
});
