#!/usr/bin/env bash
# The "real run": trains ConvNeXt-atto FROM SCRATCH with `convnext train` on a small dataset of real
# photographs/textures (scikit-image's sample images, train and val crops cut from disjoint parts of
# each image), evaluates it with `convnext eval`, measures the training throughput of PyTorch on the
# same images and the same architecture, and writes bench/results/train-real-<date>.{json,md}.
#
#   bash examples/finetune-real/run.sh
#
# No pretrained weights: nothing is downloadable here but npm and Debian packages, so the run starts
# from the seeded official init. Needs: node >= 20, apt-get (for the python3-skimage .deb, only
# extracted, not installed), and a python3 with torch + torchvision + numpy + PIL (default
# /usr/bin/python3, Debian's torch 1.13). Every setting below can be overridden from the environment.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE="$ROOT/examples/finetune-real"
WORK=${WORK:-/tmp/convnext-finetune-real}
PY=${PY:-/usr/bin/python3}
ARCH=${ARCH:-convnext_atto}
SIZE=${SIZE:-64}
BS=${BS:-32}
EPOCHS=${EPOCHS:-24}
LR=${LR:-2e-3}
WARMUP=${WARMUP:-2}
DROP_PATH=${DROP_PATH:-0.1}
SMOOTHING=${SMOOTHING:-0.1}
SEED=${SEED:-0}
# TrivialAugmentWide off by default: on 64x64 crops of 480 images its strength (translations up to
# 32 px, rotations up to 135 deg) made the from-scratch model underfit (~80% val top-1 vs ~90% without).
TRIVIAL_AUGMENT=${TRIVIAL_AUGMENT:-0}
# Data-parallel training workers (convnext train --workers): auto = every core; 1 = the calling thread.
WORKERS=${WORKERS:-auto}
# TA_FLAG for torch_throughput.py, AA_FLAG for convnext train (whose default is --aa none, as timm's).
TA_FLAG=(); AA_FLAG=(--aa trivial)
[ "$TRIVIAL_AUGMENT" = 1 ] || { TA_FLAG=(--no-trivial-augment); AA_FLAG=(--aa none); }
TORCH_STEPS=${TORCH_STEPS:-20}
TORCH_REPEATS=${TORCH_REPEATS:-3}
THROUGHPUT_EPOCHS=${THROUGHPUT_EPOCHS:-3}
RESULTS=${RESULTS:-$ROOT/bench/results}
DATE=${DATE:-$(date -u +%Y-%m-%d)}

mkdir -p "$WORK" "$RESULTS"
cd "$ROOT"
log() { printf '\n== %s\n' "$*" >&2; }

# 1. Source images: scikit-image's sample data, from the Debian package (extracted, not installed).
SK="$WORK/skimage/usr/lib/python3/dist-packages/skimage/data"
if [ ! -f "$SK/brick.png" ]; then
  log "downloading python3-skimage (for its sample images)"
  (cd "$WORK" && rm -f python3-skimage_*.deb && apt-get download python3-skimage && dpkg -x python3-skimage_*.deb "$WORK/skimage")
fi

# 2. The dataset (deterministic).
log "building the dataset in $WORK/data"
"$PY" "$HERE/make_dataset.py" "$SK" "$WORK/data" --seed "$SEED"

# 3. The project, if not built.
if [ ! -f dist/src/cli/main.js ] || [ -n "$(find src weights-converter -name '*.ts' -newer dist/src/cli/main.js 2>/dev/null | head -1)" ]; then
  log "building convnext-tfjs"
  npm run build --silent
fi

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

# 4. Training, from scratch, with a val pass every epoch. Timed with bash's `time` (real/user/sys:
#    how many cores it kept busy).
OUT="$WORK/run"
TRAIN_CMD=(node bin/convnext.js train --data "$WORK/data/train" --val "$WORK/data/val" --arch "$ARCH"
  --epochs "$EPOCHS" --image-size "$SIZE" --batch-size "$BS" --lr "$LR" --warmup-epochs "$WARMUP"
  --drop-path "$DROP_PATH" --smoothing "$SMOOTHING" "${AA_FLAG[@]}" --seed "$SEED" --workers "$WORKERS" --out "$OUT" --json)
log "${TRAIN_CMD[*]}"
( TIMEFORMAT='%R %U %S'; time "${TRAIN_CMD[@]}" > "$WORK/train.json" 2> "$WORK/train.err" ) 2> "$WORK/train.time"
cat "$WORK/train.err" >&2
cat "$WORK/train.json"

# 5. Evaluation of the saved model by the eval command (independent of the trainer's own numbers).
log "eval"
node bin/convnext.js eval --model "$OUT/model" --data "$WORK/data/val" --json | tee "$WORK/eval.json"

# 6. Training throughput on the same train images, same architecture, batch and image size, with
#    TrivialAugmentWide as in the main run and the other way.
#    Ours: log.jsonl images_per_s (the epoch's training loop: decode + augment + step, on WORKERS workers;
#    the val pass excluded), median over epochs 2.. (epoch 1 includes the wasm warm-up): the main
#    run's, and for the other augmentation setting the same command without --val for
#    THROUGHPUT_EPOCHS epochs.
#    PyTorch: torch_throughput.py, 1 and 2 threads (OpenBLAS pinned to 1 thread; for the main
#    setting also left at its default), num_workers=0, median of TORCH_REPEATS repeats.
OTHER_TA=$(( 1 - TRIVIAL_AUGMENT ))
OTHER_FLAG=(); OTHER_AA=(--aa trivial); [ "$OTHER_TA" = 1 ] || { OTHER_FLAG=(--no-trivial-augment); OTHER_AA=(--aa none); }
log "throughput, ours, TrivialAugmentWide=$OTHER_TA (no val)"
( TIMEFORMAT='%R %U %S'; time node bin/convnext.js train --data "$WORK/data/train" --arch "$ARCH" --epochs "$THROUGHPUT_EPOCHS" \
  --image-size "$SIZE" --batch-size "$BS" --lr "$LR" --warmup-epochs "$WARMUP" --drop-path "$DROP_PATH" --smoothing "$SMOOTHING" \
 "${OTHER_AA[@]}" --seed "$SEED" --workers "$WORKERS" --out "$WORK/run-ta$OTHER_TA" > /dev/null 2> "$WORK/run-ta$OTHER_TA.err" ) 2> "$WORK/run-ta$OTHER_TA.time"
cat "$WORK/run-ta$OTHER_TA.err" >&2
log "throughput, PyTorch, TrivialAugmentWide=$TRIVIAL_AUGMENT"
"$PY" "$HERE/torch_throughput.py" "$WORK/data/train" --image-size "$SIZE" --batch-size "$BS" --steps "$TORCH_STEPS" --repeats "$TORCH_REPEATS" \
  --drop-path "$DROP_PATH" --smoothing "$SMOOTHING" --lr "$LR" ${TA_FLAG[@]+"${TA_FLAG[@]}"} --untuned --threads 1 2 > "$WORK/torch-ta$TRIVIAL_AUGMENT.json"
log "throughput, PyTorch, TrivialAugmentWide=$OTHER_TA"
"$PY" "$HERE/torch_throughput.py" "$WORK/data/train" --image-size "$SIZE" --batch-size "$BS" --steps "$TORCH_STEPS" --repeats "$TORCH_REPEATS" \
  --drop-path "$DROP_PATH" --smoothing "$SMOOTHING" --lr "$LR" ${OTHER_FLAG[@]+"${OTHER_FLAG[@]}"} --threads 1 2 > "$WORK/torch-ta$OTHER_TA.json"
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# 7. Results.
log "writing $RESULTS/train-real-$DATE.{json,md}"
export WORK OUT RESULTS DATE LOAD_BEFORE LOAD_AFTER ARCH SIZE BS EPOCHS LR WARMUP DROP_PATH SMOOTHING SEED THROUGHPUT_EPOCHS TRIVIAL_AUGMENT TORCH_STEPS TORCH_REPEATS WORKERS
export TRAIN_CMD_STR="${TRAIN_CMD[*]}"
"$PY" - <<'EOF'
import json, os, platform, statistics, subprocess

E = os.environ
W = E['WORK']
def lines(p): return [json.loads(l) for l in open(p) if l.strip()]
report = json.load(open(os.path.join(E['OUT'], 'report.json')))
log = lines(os.path.join(E['OUT'], 'log.jsonl'))
ev = json.load(open(os.path.join(W, 'eval.json')))
manifest = json.load(open(os.path.join(W, 'data', 'manifest.json')))
cpu = next((l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name')), 'unknown')
node = subprocess.run(['node', '--version'], capture_output=True, text=True).stdout.strip()
nproc = os.cpu_count()

def cores(f):  # CPU seconds per wall second of a `time`d command
    real, user, sys_ = (float(x) for x in open(f).read().split())
    return real, (user + sys_) / real

wall, main_cores = cores(os.path.join(W, 'train.time'))
variants = []
for ta in ('0', '1'):
    main = ta == E['TRIVIAL_AUGMENT']
    run_dir = E['OUT'] if main else os.path.join(W, f'run-ta{ta}')
    ours = [r['images_per_s'] for r in lines(os.path.join(run_dir, 'log.jsonl'))]
    ours_med = statistics.median(ours[1:] or ours)
    torch = json.load(open(os.path.join(W, f'torch-ta{ta}.json')))
    tr = {r['threads']: r for r in torch['results'] if r['blas_threads'] in (1, None)}
    variants.append({
        'trivial_augment': ta == '1',
        'ours_source': 'main run log.jsonl' if main else f"train command without --val, {E['THROUGHPUT_EPOCHS']} epochs, log.jsonl",
        'ours_train_images_per_s': ours_med,
        'ours_train_images_per_s_per_epoch': ours,
        'ours_cpu_seconds_per_wall_second': main_cores if main else cores(os.path.join(W, f'run-ta{ta}.time'))[1],
        'torch': torch,
        'ratio_vs_torch_1thread': ours_med / tr[1]['train_images_per_s'],
        'ratio_vs_torch_2threads': ours_med / tr[2]['train_images_per_s'],
        'ratio_vs_torch_1thread_compute_only': ours_med / tr[1]['compute_images_per_s'],
    })
main_v = variants[int(E['TRIVIAL_AUGMENT'] == '1')]
classes = report['classes']
res = {
    'date': E['DATE'],
    'what': 'convnext_atto trained from scratch (no pretrained weights: none downloadable here) by `convnext train` on real images; eval by `convnext eval`; PyTorch training throughput on the same images',
    'machine': {'nproc': nproc, 'cpu': cpu, 'node': node, 'platform': platform.platform(), 'loadavg_before': E['LOAD_BEFORE'], 'loadavg_after': E['LOAD_AFTER']},
    'dataset': {**manifest, 'train_images': sum(c['train'] for c in manifest['classes'].values()), 'val_images': sum(c['val'] for c in manifest['classes'].values())},
    'command': E['TRAIN_CMD_STR'],
    'settings': {'arch': E['ARCH'], 'image_size': int(E['SIZE']), 'batch_size': int(E['BS']), 'epochs': int(E['EPOCHS']), 'workers': E['WORKERS'], 'lr': float(E['LR']), 'warmup_epochs': float(E['WARMUP']),
                 'drop_path': float(E['DROP_PATH']), 'label_smoothing': float(E['SMOOTHING']), 'seed': int(E['SEED']), 'backend': 'wasm (default)', 'augment': 'RandomResizedCrop(0.08-1, bicubic) + hflip' + (' + TrivialAugmentWide' if E['TRIVIAL_AUGMENT'] == '1' else ' (TrivialAugmentWide off)')},
    'wall_seconds': wall,
    'cpu_seconds_per_wall_second': main_cores,
    'trainer_seconds': report['seconds'],
    'final': {'top1': report['final']['top1'], 'top5': report['final']['top5'], 'loss': report['final']['loss'], 'n': report['final']['n']},
    'eval_command': ev,
    'classes': classes,
    'confusion': report['final']['confusion'],
    'history': report['history'],
    'throughput': {
        'note': f"ours_train_images_per_s: log.jsonl images_per_s (training loop incl. decoding + augmentation, {E['WORKERS']} data-parallel workers, val pass excluded), median over epochs 2... torch: torch_throughput.py, median of {E['TORCH_REPEATS']} repeats of {E['TORCH_STEPS']} steps; 'T threads' = torch.set_num_threads(T) with OpenBLAS pinned to 1 thread (configs with the BLAS at its default thread count are listed separately); train_images_per_s incl. data loading (DataLoader num_workers=0), compute_images_per_s on one pre-built batch",
        'variants': variants,
    },
}
base = os.path.join(E['RESULTS'], f"train-real-{E['DATE']}")
with open(base + '.json', 'w') as f:
    json.dump(res, f, indent=1)

pct = lambda v: f"{100 * v:.2f}%"
md = []
md.append(f"# Real-data training run, {E['DATE']}\n")
md.append(f"`{E['ARCH']}` trained **from scratch** (no pretrained weights are downloadable in this environment) by `convnext train` on the wasm backend, on a small dataset of real photographs and textures; evaluated by `convnext eval`; PyTorch's training throughput measured on the same images. Reproduce: `bash examples/finetune-real/run.sh`.\n")
md.append("## Dataset\n")
md.append(f"{len(classes)} classes, one source image each from scikit-image's sample data (Debian `python3-skimage` 0.19.3). "
          f"{res['dataset']['train_images']} train / {res['dataset']['val_images']} val images. Train crops are cut only from the left 2/3 of each source image, val crops only from the right 1/3 (no pixel overlap). "
          f"Random rectangles of side {manifest['crop_side'][0]}-{manifest['crop_side'][1]} px (aspect 3:4-4:3), saved at native size as JPEG q90; seeded, deterministic.\n")
md.append("| class | source | size | mode | train (cols) | val (cols) |\n|---|---|---|---|---|---|")
for k, c in manifest['classes'].items():
    md.append(f"| {k} | {c['file']} | {c['size'][0]}x{c['size'][1]} | {c['mode']} | {c['train']} ({c['train_cols'][0]}-{c['train_cols'][1]}) | {c['val']} ({c['val_cols'][0]}-{c['val_cols'][1]}) |")
md.append("\n## Command\n")
md.append(f"```\n{E['TRAIN_CMD_STR']}\n```\n")
md.append(f"Wall time {wall:.0f} s ({main_cores:.2f} CPU s per wall s) for {E['EPOCHS']} epochs ({report['seconds']:.0f} s inside the trainer), batch {E['BS']}, image size {E['SIZE']}, lr {E['LR']} (cosine, {E['WARMUP']} warmup epochs), drop path {E['DROP_PATH']}, label smoothing {E['SMOOTHING']}, augmentation {res['settings']['augment']}.\n")
md.append("## Accuracy\n")
md.append(f"Final val top-1 **{pct(report['final']['top1'])}**, top-5 {pct(report['final']['top5'])} (8 classes: top-5 is nearly meaningless) on {report['final']['n']} images; chance is {pct(1 / len(classes))}. "
          f"`convnext eval` on the saved model: top-1 {pct(ev['top1'])}, top-5 {pct(ev['top5'])}.\n")
md.append("Confusion matrix (rows: true class, columns: predicted):\n")
md.append("| true \\ pred | " + " | ".join(classes) + " |\n|---|" + "---|" * len(classes))
for k, row in zip(classes, report['final']['confusion']):
    md.append(f"| {k} | " + " | ".join(str(v) for v in row) + " |")
md.append("\nPer epoch:\n")
md.append("| epoch | train loss | train acc | val top-1 | val loss | lr | img/s (log) | s |\n|---|---|---|---|---|---|---|---|")
for r in report['history']:
    md.append(f"| {r['epoch']} | {r['train_loss']:.4f} | {pct(r['train_acc'])} | {pct(r['val_top1'])} | {r['val_loss']:.4f} | {r['lr']:.2e} | {r['images_per_s']:.1f} | {r['seconds']:.1f} |")
md.append("\n## Throughput: ours vs PyTorch\n")
md.append(f"Training images/s on the same train images, same architecture (torchvision `ConvNeXt` with atto's configuration, {main_v['torch']['results'][0]['params']:,} parameters, as ours), batch {E['BS']}, {E['SIZE']}x{E['SIZE']}, AdamW, label smoothing, drop path {E['DROP_PATH']}. "
          f"\"incl. loading\": the whole loop with JPEG decoding and augmentation in the training process (ours: in its data-parallel workers, --workers {E['WORKERS']}; PyTorch: DataLoader num_workers=0). \"compute\": PyTorch forward + backward + step on one pre-built batch. "
          f"Ours: log.jsonl `images_per_s` (training loop only, val pass excluded), median over epochs 2.. of the main run (and, for the other augmentation setting, of the same command without `--val`, {E['THROUGHPUT_EPOCHS']} epochs). PyTorch: median of {E['TORCH_REPEATS']} repeats of {E['TORCH_STEPS']} steps; \"T threads\" = `torch.set_num_threads(T)` with OpenBLAS pinned to 1 thread (see below).\n")
md.append("| augmentation | ours (wasm) | ours CPU s per wall s | PyTorch 1 thread incl. loading | PyTorch 2 threads incl. loading | PyTorch 1 thread compute | PyTorch 2 threads compute | PyTorch loading alone | ours / PyTorch 1 thread | ours / PyTorch 2 threads |\n|---|---|---|---|---|---|---|---|---|---|")
for v in variants:
    tr = {r['threads']: r for r in v['torch']['results'] if r['blas_threads'] in (1, None)}
    aug = 'RRC + flip' + (' + TrivialAugmentWide' if v['trivial_augment'] else '')
    md.append(f"| {aug} | **{v['ours_train_images_per_s']:.1f}** | {v['ours_cpu_seconds_per_wall_second']:.2f} | **{tr[1]['train_images_per_s']:.1f}** | {tr[2]['train_images_per_s']:.1f} | {tr[1]['compute_images_per_s']:.1f} | {tr[2]['compute_images_per_s']:.1f} | {tr[1]['loading_images_per_s']:.0f} | **{v['ratio_vs_torch_1thread']:.2f}x** | {v['ratio_vs_torch_2threads']:.2f}x |")
md.append(f"\nPyTorch thread configurations ({res['settings']['augment']}); Debian's torch has no MKL, its Linear GEMMs go to OpenBLAS, whose threads `torch.set_num_threads` does not control (default: all {nproc} cores). The table above uses the BLAS pinned to 1 thread, so that \"1 thread\" really is one:\n")
md.append("| configuration | training incl. loading, img/s | compute only, img/s | CPU s per wall s | ours / this |\n|---|---|---|---|---|")
for r in main_v['torch']['results']:
    md.append(f"| {r['config']} | {r['train_images_per_s']:.1f} | {r['compute_images_per_s']:.1f} | {max(r['cpu_seconds_per_wall_second']):.2f} | {main_v['ours_train_images_per_s'] / r['train_images_per_s']:.2f}x |")
md.append("\nconvnext-tfjs trains in one thread (the wasm backend without threads; see its CPU s per wall s), so PyTorch with 1 thread (and the BLAS pinned to 1 thread) is the like-for-like comparison." if E['WORKERS'] == '1' else f"\nconvnext-tfjs trains with --workers {E['WORKERS']} (data-parallel replicas, one wasm thread each, decoding in the workers; see its CPU s per wall s), so PyTorch's best configuration on all {nproc} cores is the like-for-like comparison.")
md.append("## Machine\n")
md.append(f"{nproc} CPUs, {cpu}; node {node}; {platform.platform()}; PyTorch {main_v['torch']['torch']} / torchvision {main_v['torch']['torchvision']} (Debian; MKL-DNN {main_v['torch']['mkldnn']}), Python {main_v['torch']['python']}. "
          f"Load average before / after: {E['LOAD_BEFORE']} / {E['LOAD_AFTER']} (other work was running on the machine; throughput numbers are noisy to that extent).\n")
with open(base + '.md', 'w') as f:
    f.write('\n'.join(md) + '\n')
tr = {r['threads']: r for r in main_v['torch']['results'] if r['blas_threads'] in (1, None)}
print(json.dumps({'top1': report['final']['top1'], 'top5': report['final']['top5'], 'wall_s': wall, 'ours_img_s': main_v['ours_train_images_per_s'],
                  'torch_1t': tr[1]['train_images_per_s'], 'torch_2t': tr[2]['train_images_per_s'], 'results': base + '.{json,md}'}))
EOF
