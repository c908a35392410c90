#!/usr/bin/env bash
# FCMAE on real images, end to end on the embedded default (wasm, 1 thread):
#   1. unlabeled pretraining of convnextv2_atto on the train crops of examples/finetune-real's data
#      set (scikit-image photos and textures; labels ignored) with `convnext pretrain`
#   2. fine-tuning on the labelled set from that encoder (`train --init <run>/encoder`) and from
#      scratch, same recipe and budget; both evaluated on the disjoint val crops
# Results: $WORK/{pretrain,ft-fcmae,ft-scratch} and a summary JSON on stdout.
# Usage: bash examples/fcmae-real/run.sh      (WORK=/tmp/fcmae-real; knobs below as env variables;
#        PT_INIT=official BLR=1.5e-3: the official-init run of README.md, whose fine-tune diverges)
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
WORK=${WORK:-/tmp/fcmae-real}
PY=${PY:-/usr/bin/python3}
SIZE=${SIZE:-64} PT_EPOCHS=${PT_EPOCHS:-6} PT_BS=${PT_BS:-32} BLR=${BLR:-1.5e-2} PT_WARMUP=${PT_WARMUP:-1} PT_INIT=${PT_INIT:-convnext}
FT_EPOCHS=${FT_EPOCHS:-8} FT_BS=${FT_BS:-32} LR=${LR:-2e-3} FT_WARMUP=${FT_WARMUP:-2}
CLI="node $REPO/bin/convnext.js"
mkdir -p "$WORK"
SK="$WORK/skimage/usr/lib/python3/dist-packages/skimage/data"
if [ ! -d "$SK" ]; then
  (cd "$WORK" && rm -f python3-skimage_*.deb && apt-get download python3-skimage && dpkg -x python3-skimage_*.deb "$WORK/skimage")
fi
[ -d "$WORK/data/train" ] || "$PY" "$REPO/examples/finetune-real/make_dataset.py" "$SK" "$WORK/data"

# 1. pretraining (labels ignored: the loader lists every image under train/, recursively)
$CLI pretrain --data "$WORK/data/train" --arch convnextv2_atto --image-size "$SIZE" --batch-size "$PT_BS" \
  --epochs "$PT_EPOCHS" --blr "$BLR" --warmup-epochs "$PT_WARMUP" --init "$PT_INIT" --reconstruct-every 3 --seed 0 \
  --out "$WORK/pretrain" --json > "$WORK/pretrain.json"

# 2. the same fine-tuning recipe from the FCMAE encoder and from scratch
FT="--data $WORK/data/train --val $WORK/data/val --arch convnextv2_atto --epochs $FT_EPOCHS --image-size $SIZE \
  --batch-size $FT_BS --lr $LR --warmup-epochs $FT_WARMUP --drop-path 0.1 --smoothing 0.1 --no-trivial-augment --seed 0"
$CLI train $FT --init "$WORK/pretrain/encoder" --out "$WORK/ft-fcmae" --json > "$WORK/ft-fcmae.json"
$CLI train $FT --out "$WORK/ft-scratch" --json > "$WORK/ft-scratch.json"
node -e '
const fs = require("fs"); const w = process.argv[1];
const log = (f) => fs.readFileSync(f, "utf8").trim().split("\n").map(JSON.parse);
console.log(JSON.stringify({ pretrain: log(w + "/pretrain/log.jsonl").map((r) => ({ epoch: r.epoch, loss: r.loss, images_per_s: r.images_per_s })),
  finetune_from_fcmae: JSON.parse(fs.readFileSync(w + "/ft-fcmae.json", "utf8")), finetune_from_scratch: JSON.parse(fs.readFileSync(w + "/ft-scratch.json", "utf8")),
  finetune_val_top1_by_epoch: { fcmae: log(w + "/ft-fcmae/log.jsonl").map((r) => r.val_top1), scratch: log(w + "/ft-scratch/log.jsonl").map((r) => r.val_top1) } }, null, 1));' "$WORK"
