/**
 * Nearest-neighbour image search by embedding: embed a folder of images, then rank them by cosine
 * similarity to a query image.
 *
 *   node dist/examples/search.js <query image> <folder> [--model M] [--k 5]
 */
import { parseArgs } from 'util';
import * as fs from 'fs';
import * as path from 'path';
import { Predictor, createModel, initBackend, runTolerant } from '../src';

function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return dot / Math.sqrt(na * nb);
}

async function main(): Promise<void> {
  const { values, positionals: args } = parseArgs({ options: { model: { type: 'string' }, k: { type: 'string', default: '5' } }, allowPositionals: true });
  const model = values.model;
  const k = Number(values.k);
  const [query, folder] = args;
  if (!query || !folder) throw new Error('usage: search.js <query image> <folder> [--model M] [--k 5]');
  await initBackend();
  // Without --model a random ConvNeXt-atto still demonstrates the mechanics (its neighbours are not semantic).
  const predictor = model ? await Predictor.load(model) : new Predictor(createModel('convnext_atto', { seed: 0 }));
  const files = fs
    .readdirSync(folder)
    .filter((f) => /\.(jpe?g|png|bmp|gif|tiff?)$/i.test(f))
    .map((f) => path.join(folder, f));
  const [q] = await predictor.embed(query);
  // Embed in batches; an unreadable image is reported and left out.
  const index: { f: string; emb: Float32Array }[] = [];
  await runTolerant(predictor, files, predictor.embedJob(), (r) => {
    if ('error' in r) console.error(`skipped ${r.input}: ${r.error.message}`);
    else index.push({ f: r.input as string, emb: r.value });
  });
  const ranked = index.map(({ f, emb }) => ({ f, score: cosine(q, emb) })).sort((a, b) => b.score - a.score);
  console.log(`nearest to ${query} among ${index.length} images:`);
  for (const r of ranked.slice(0, k)) console.log(`  ${r.score.toFixed(4)}  ${r.f}`);
  await predictor.dispose();
}

main().catch((e) => {
  console.error(`error: ${e.message}`);
  process.exitCode = 1;
});
