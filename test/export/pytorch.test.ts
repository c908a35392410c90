/**
 * Proof that exports load in PyTorch: each model here is exported to every layout it fits, and
 * test/export/check_export.py (run with /usr/bin/python3) loads each file with strict=True into a
 * module with that ecosystem's parameter names (torchvision's own ConvNeXt; reference modules
 * mirroring the official, timm and HF module trees, since timm/transformers are not installed)
 * and compares its logits with ours: max|diff| <= 1e-4 * max(1, max|ref|), identical argmax.
 * Models: two PyTorch-written fixtures (V1, V2), random-weight convnext_atto / convnextv2_atto
 * (timm conv_mlp), float16 exports, and a 3-class model fine-tuned here (exported through the CLI
 * from its training run directory). Skipped, saying why, when /usr/bin/python3 has no torch.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { registerWasmTrainingKernels } from '../../src/backend/wasm_gradients';
import { writeNpy } from '../../src/io/npy';
import { loadConvertedModel } from '../../src/io/model_dir';
import { ConvNeXt } from '../../src/model';
import { createModel } from '../../src/factory/create';
import { train } from '../../src/train/trainer';
import { convertCheckpoint, modelFromConverted } from '../../weights-converter/convert';
import { EXPORT_EXTENSIONS, exportModel, timmUsesConvMlp } from '../../weights-converter/export';
import { LAYOUTS, Layout } from '../../weights-converter/layouts';
import { randn, useBackend, writeColourFolder } from '../helpers';
import { assignWeights, randomWeights } from '../random_weights';

const ROOT = path.join(__dirname, '..', '..', '..');
const PY = '/usr/bin/python3';
const BIN = path.join(ROOT, 'bin', 'convnext.js');
const torchCheck = spawnSync(PY, ['-c', 'import torch, torchvision'], { encoding: 'utf8' });
const NO_TORCH =
  torchCheck.status === 0
    ? null
    : `no PyTorch: ${PY} -c 'import torch, torchvision' failed (${(torchCheck.stderr || String(torchCheck.error ?? '')).trim().split('\n').pop()})`;

interface Case {
  name: string;
  layout: Layout;
  file: string;
  version: number;
  depths: number[];
  dims: number[];
  num_classes: number;
  conv_mlp: boolean;
  input: string;
  logits: string;
  labels?: string[];
}

interface Result {
  name: string;
  layout: string;
  ok: boolean;
  max_abs_diff?: number;
  scale?: number;
  dtype?: string;
  id2label?: string[];
  error?: string;
}

function layoutsFor(m: ConvNeXt): Layout[] {
  return LAYOUTS.filter((l) => !(l === 'torchvision' && m.config.version === 2));
}

(NO_TORCH ? describe.skip : describe)(
  `export: files load in PyTorch with strict=True and give our logits${NO_TORCH ? ` (skipped: ${NO_TORCH})` : ''}`,
  function () {
    this.timeout(600_000);
    let tmp: string;
    const cases: Case[] = [];
    let input: string;
    let x: tf.Tensor4D;

    before(async () => {
      await useBackend('wasm');
      registerWasmTrainingKernels();
      tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convnext-export-pt-'));
      const nchw = randn(2 * 3 * 32 * 32, 'export-input');
      input = path.join(tmp, 'input.npy');
      writeNpy(input, { shape: [2, 3, 32, 32], data: nchw });
      x = tf.tidy(() => tf.transpose(tf.tensor4d(nchw, [2, 3, 32, 32]), [0, 2, 3, 1]));
    });
    after(() => {
      x?.dispose();
      if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
    });

    /** Our logits for the shared input, saved for the Python side. */
    function ourLogits(m: ConvNeXt, name: string): string {
      const before = tf.memory().numTensors;
      const logits = tf.tidy(() => m.forward(x).dataSync() as Float32Array);
      expect(tf.memory().numTensors).to.equal(before);
      const file = path.join(tmp, `${name}.logits.npy`);
      writeNpy(file, { shape: [2, m.config.numClasses], data: logits });
      return file;
    }

    function addCase(m: ConvNeXt, name: string, layout: Layout, file: string, logits: string, labels?: string[]): void {
      const c = m.config;
      cases.push({
        name,
        layout,
        file,
        version: c.version,
        depths: [...c.depths],
        dims: [...c.dims],
        num_classes: c.numClasses,
        conv_mlp: layout === 'timm' && timmUsesConvMlp(c),
        input,
        logits,
        labels,
      });
    }

    /** Exports `m` to every layout it fits (fp32), recording the cases. */
    function exportAll(m: ConvNeXt, name: string): void {
      const logits = ourLogits(m, name);
      for (const layout of layoutsFor(m)) {
        const dir = path.join(tmp, `${name}-${layout}`);
        fs.mkdirSync(dir);
        const file = path.join(dir, `model${EXPORT_EXTENSIONS[layout]}`);
        exportModel(m, file, { layout });
        addCase(m, name, layout, file, logits);
      }
    }

    it('exports PyTorch-written fixtures (V1 official, V2 official) to every layout', async () => {
      for (const c of ['v1_official', 'v2_official']) {
        const meta = JSON.parse(fs.readFileSync(path.join(ROOT, 'test/fixtures/parity', c, 'meta.json'), 'utf8')) as { checkpoint: string };
        const m = modelFromConverted(await convertCheckpoint(path.join(ROOT, 'test/fixtures/parity', c, meta.checkpoint)));
        try {
          exportAll(m, c);
        } finally {
          m.dispose();
        }
      }
    });

    it('exports random-weight convnext_atto and convnextv2_atto (timm conv_mlp: 1x1-conv MLP)', () => {
      for (const arch of ['convnext_atto', 'convnextv2_atto']) {
        const m = createModel(arch, { numClasses: 5 });
        try {
          assignWeights(m, randomWeights(m, arch));
          exportAll(m, arch);
        } finally {
          m.dispose();
        }
      }
      expect(cases.filter((c) => c.conv_mlp).map((c) => c.name)).to.deep.equal(['convnext_atto', 'convnextv2_atto']);
    });

    it('exports float16 (official and hf), checked against our forward of the float16 weights read back', async () => {
      const src = modelFromConverted(await convertCheckpoint(path.join(ROOT, 'test/fixtures/parity/v2_official/convnextv2_test_1k_224_ema.pt')));
      try {
        for (const layout of ['official', 'hf'] as const) {
          const dir = path.join(tmp, `fp16-${layout}`);
          fs.mkdirSync(dir);
          const file = path.join(dir, `model${EXPORT_EXTENSIONS[layout]}`);
          exportModel(src, file, { layout, fp16: true });
          const back = modelFromConverted(await convertCheckpoint(file));
          try {
            addCase(back, `v2_fp16_${layout}`, layout, file, ourLogits(back, `v2_fp16_${layout}`));
          } finally {
            back.dispose();
          }
        }
      } finally {
        src.dispose();
      }
    });

    it('exports a 3-class model fine-tuned here, through the CLI from its training run directory', async () => {
      const data = path.join(tmp, 'data');
      writeColourFolder(data, { perClass: 4, seed: 'export', noise: 40, size: () => [36, 36], prefix: 'colour_' });
      const run = path.join(tmp, 'run');
      await train({ data, valSplit: 0.25, arch: 'convnext_atto', epochs: 1, imageSize: 32, batchSize: 6, lr: 2e-3, seed: 5, out: run });
      const { model, meta } = await loadConvertedModel(path.join(run, 'model'));
      try {
        expect(meta.labels).to.deep.equal(['colour_0', 'colour_1', 'colour_2']);
        const logits = ourLogits(model, 'finetuned');
        for (const layout of layoutsFor(model)) {
          const file = path.join(tmp, `finetuned-${layout}${EXPORT_EXTENSIONS[layout]}`);
          const target = layout === 'hf' ? path.join(tmp, 'finetuned-hf') : file;
          const r = spawnSync(process.execPath, [BIN, 'export', run, target, '--layout', layout, '--json'], {
            encoding: 'utf8',
            env: { ...process.env, CONVNEXT_BACKEND: 'wasm' },
          });
          expect(r.status, r.stderr).to.equal(0);
          const summary = JSON.parse(r.stdout) as { files: string[]; num_classes: number };
          expect(summary.num_classes).to.equal(3);
          addCase(model, 'finetuned', layout, summary.files[0], logits, meta.labels);
        }
      } finally {
        model.dispose();
      }
    });

    it('every export loads strictly in PyTorch and its logits are ours within 1e-4 (check_export.py)', () => {
      expect(cases.length).to.equal(4 + 3 + 4 + 3 + 2 + 4);
      const manifest = path.join(tmp, 'manifest.json');
      fs.writeFileSync(manifest, JSON.stringify(cases, null, 1));
      const r = spawnSync(PY, [path.join(ROOT, 'test/export/check_export.py'), manifest], { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '1' } });
      const results = r.stdout
        .trim()
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Result);
      expect(results, r.stderr).to.have.length(cases.length);
      const bad = results.filter((q) => !q.ok).map((q) => `${q.name}/${q.layout}: ${q.error ?? `diff ${q.max_abs_diff} (scale ${q.scale})`}`);
      expect(bad, 'failed cases').to.deep.equal([]);
      expect(r.status).to.equal(0);
      for (const q of results) expect(q.max_abs_diff!).to.be.at.most(1e-4 * q.scale!);
      expect(results.filter((q) => q.name.startsWith('v2_fp16')).map((q) => q.dtype)).to.deep.equal(['float16', 'float16']);
      const hfTuned = results.find((q) => q.name === 'finetuned' && q.layout === 'hf')!;
      expect(hfTuned.id2label).to.deep.equal(['colour_0', 'colour_1', 'colour_2']);
      if (process.env.EXPORT_REPORT) fs.writeFileSync(process.env.EXPORT_REPORT, results.map((q) => JSON.stringify(q)).join('\n') + '\n');
    });
  },
);
