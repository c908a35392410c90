/**
 * The demo page (examples/browser/index.html, built into dist/browser/ by npm run build:browser).
 * Imports the library as any page would (./convnext-tfjs.js). Pick or drop an image (or ?image=URL),
 * pick a model (?model=URL of a converted model directory or of a .pth/.safetensors, or drop a
 * checkpoint: converted here, no server), choose the backend (?backend=); see the top-k with bars,
 * the four stage maps as heat maps, the time per image and the weights' load progress.
 *
 * When a classification finishes, <pre id="result"> holds one JSON object
 * {"backend", "top": [{"label", "index", "prob"}], "ms"} (test/browser reads it); on failure
 * {"error"}. Extra parameters: ?topk=N, ?runs=N (timed runs after one warm-up; ms is their median),
 * ?model=random:convnext_atto (seeded random weights, for timing).
 */
import { BackendInfo, BrowserPredictor, LoadProgress, createModel, initBackend, isCheckpointUrl, tf } from 'convnext-tfjs';

const params = new URLSearchParams(location.search);
const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;

const ui = {
  status: $<HTMLDivElement>('status'),
  progress: $<HTMLProgressElement>('progress'),
  preview: $<HTMLImageElement>('preview'),
  top: $<HTMLDivElement>('top'),
  ms: $<HTMLDivElement>('ms'),
  stages: $<HTMLDivElement>('stages'),
  result: $<HTMLPreElement>('result'),
  drop: $<HTMLDivElement>('drop'),
  imageFile: $<HTMLInputElement>('image-file'),
  modelFile: $<HTMLInputElement>('model-file'),
  backend: $<HTMLSelectElement>('backend'),
};

let predictor: BrowserPredictor | null = null;
let backendInfo: BackendInfo | null = null;
let image: Blob | string | null = params.get('image');
let hfConfig: File | undefined;
const topkParam = Number(params.get('topk') ?? 5);
const runs = Math.max(1, Number(params.get('runs') ?? 1));

function status(text: string, error = false): void {
  ui.status.textContent = text;
  ui.status.className = error ? 'error' : 'muted';
}

function fail(e: unknown): void {
  const message = e instanceof Error ? e.message : String(e);
  status(message, true);
  ui.result.textContent = JSON.stringify({ error: message });
}

function onProgress(p: LoadProgress): void {
  ui.progress.max = p.total || 1;
  ui.progress.value = p.total ? p.loaded : 0;
  const mb = (n: number): string => (n / 1048576).toFixed(1);
  status(
    p.status === 'converting'
      ? `converting ${p.file}…`
      : p.status === 'done'
        ? 'model ready'
        : `loading ${p.file.replace(/^.*\//, '')}: ${mb(p.loaded)} / ${mb(p.total)} MB`,
  );
}

/** A perceptual ramp (dark blue -> teal -> yellow), v in [0, 1]. */
function colour(v: number): [number, number, number] {
  const stops: [number, number, number][] = [
    [68, 1, 84],
    [59, 82, 139],
    [33, 145, 140],
    [94, 201, 98],
    [253, 231, 37],
  ];
  const x = Math.min(Math.max(v, 0), 1) * (stops.length - 1);
  const i = Math.min(Math.floor(x), stops.length - 2);
  const f = x - i;
  return [0, 1, 2].map((k) => Math.round(stops[i][k] + f * (stops[i + 1][k] - stops[i][k]))) as [number, number, number];
}

function drawStages(stages: { height: number; width: number; data: Float32Array }[]): void {
  ui.stages.replaceChildren();
  stages.forEach((s, i) => {
    const canvas = document.createElement('canvas');
    canvas.width = s.width;
    canvas.height = s.height;
    const ctx = canvas.getContext('2d')!;
    const img = ctx.createImageData(s.width, s.height);
    // 1st-99th percentile: a few outlying positions would otherwise wash the map out.
    const sorted = Float32Array.from(s.data).sort();
    const lo = sorted[Math.floor(0.01 * (sorted.length - 1))];
    const hi = sorted[Math.ceil(0.99 * (sorted.length - 1))];
    s.data.forEach((v, p) => {
      const [r, g, b] = colour(hi > lo ? (v - lo) / (hi - lo) : 0);
      img.data.set([r, g, b, 255], p * 4);
    });
    ctx.putImageData(img, 0, 0);
    const fig = document.createElement('figure');
    const cap = document.createElement('figcaption');
    cap.textContent = `stage ${i + 1}: ${s.height}×${s.width}`;
    fig.append(canvas, cap);
    ui.stages.append(fig);
  });
}

function drawTop(top: { label: string; index: number; prob: number }[]): void {
  ui.top.replaceChildren(
    ...top.map((t) => {
      const row = document.createElement('div');
      row.className = 'row';
      const label = document.createElement('span');
      label.className = 'label';
      label.textContent = `${t.label} (${t.index})`;
      label.title = t.label;
      const bar = document.createElement('div');
      bar.className = 'bar';
      const fill = document.createElement('div');
      fill.style.width = `${(t.prob * 100).toFixed(1)}%`;
      bar.append(fill);
      const pct = document.createElement('span');
      pct.textContent = `${(t.prob * 100).toFixed(2)}%`;
      row.append(label, bar, pct);
      return row;
    }),
  );
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function classify(): Promise<void> {
  if (!predictor || !image) return;
  ui.result.textContent = '';
  status('classifying…');
  ui.preview.src = typeof image === 'string' ? image : URL.createObjectURL(image);
  const x = await predictor.preprocess(image);
  const topk = Math.min(Number.isInteger(topkParam) && topkParam > 0 ? topkParam : 5, predictor.model.numClasses);
  // One warm-up when timing several runs: WebGL/WebGPU compile their shaders on the first.
  if (runs > 1) await predictor.classifyWithStages(x, { topk });
  const times: number[] = [];
  let out: Awaited<ReturnType<BrowserPredictor['classifyWithStages']>> | null = null;
  for (let r = 0; r < runs; r++) {
    const t0 = performance.now();
    out = await predictor.classifyWithStages(x, { topk });
    times.push(performance.now() - t0);
  }
  const ms = median(times);
  drawTop(out!.top);
  drawStages(out!.stages);
  ui.ms.textContent = `${ms.toFixed(1)} ms / image on ${backendInfo?.backend}${runs > 1 ? ` (median of ${runs})` : ''}`;
  status('done');
  ui.result.textContent = JSON.stringify({ backend: backendInfo?.backend, top: out!.top, ms: Math.round(ms * 100) / 100 });
}

async function loadModel(source: string | File): Promise<void> {
  predictor?.dispose();
  predictor = null;
  ui.progress.value = 0;
  if (typeof source === 'string' && source.startsWith('random:')) {
    predictor = new BrowserPredictor(createModel(source.slice(7)), {});
    status(`random-weight ${source.slice(7)} ready`);
    return;
  }
  status(`loading ${typeof source === 'string' ? source : source.name}…`);
  predictor = await BrowserPredictor.load(source, { onProgress, hfConfig });
  status(`model ${predictor.model.config.name} ready (${predictor.model.numClasses} classes)`);
}

async function handleFiles(files: FileList | File[]): Promise<void> {
  const list = [...files];
  hfConfig = list.find((f) => f.name === 'config.json') ?? hfConfig;
  const ckpt = list.find((f) => isCheckpointUrl(f.name));
  const img = list.find((f) => f.type.startsWith('image/'));
  if (ckpt) await loadModel(ckpt);
  if (img) image = img;
  await classify();
}

function wire(): void {
  ui.imageFile.addEventListener('change', () => ui.imageFile.files && handleFiles(ui.imageFile.files).catch(fail));
  ui.modelFile.addEventListener('change', () => ui.modelFile.files && handleFiles(ui.modelFile.files).catch(fail));
  ui.backend.addEventListener('change', () => {
    params.set('backend', ui.backend.value);
    location.search = params.toString();
  });
  ui.drop.addEventListener('dragover', (e) => {
    e.preventDefault();
    ui.drop.classList.add('over');
  });
  ui.drop.addEventListener('dragleave', () => ui.drop.classList.remove('over'));
  ui.drop.addEventListener('drop', (e) => {
    e.preventDefault();
    ui.drop.classList.remove('over');
    if (e.dataTransfer?.files.length) handleFiles(e.dataTransfer.files).catch(fail);
  });
}

async function main(): Promise<void> {
  wire();
  const backend = params.get('backend') ?? 'auto';
  ui.backend.value = backend;
  backendInfo = await initBackend({ backend });
  const skipped = backendInfo.skipped.map((s) => `${s.package.replace('@tensorflow/tfjs-backend-', '')}: ${s.reason}`).join('; ');
  status(`backend ${backendInfo.backend}${backendInfo.threads ? `, ${backendInfo.threads} thread(s)` : ''}${skipped ? ` (skipped ${skipped})` : ''}`);
  const model = params.get('model');
  if (model) await loadModel(model);
  else status(`${ui.status.textContent}. Drop a checkpoint or pass ?model=URL.`);
  await classify();
  // For tests and the console.
  (window as unknown as { convnextDemo: unknown }).convnextDemo = { tf, predictor: () => predictor, backend: () => backendInfo };
}

main().catch(fail);
