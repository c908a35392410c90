#!/usr/bin/env bash
# Inference speed table of convnext-tfjs on this machine, with its peers timed in the same run:
#   ours      arch x batch x every available backend: 1 worker 1 thread; on wasm 1 worker with a
#             thread per core (threaded build); all cores as workers (batch > 1);
#             base on wasm only (the pure-JS cpu backend takes minutes per pass)
#   peers     ../shared/peers/peer-bench.sh (PyTorch, ONNX Runtime; 1 and 2 threads; torchvision
#             archs only) and ../shared/peers/naive-tfjs.js (op-by-op TF.js, wasm)
# Writes bench/results/<date>-<host>.json and .md (OUT=<path prefix> to choose; an existing run is
# never overwritten) and prints the table with ratios; then runs bench/train.sh (training steps beside
# PyTorch's, its own table and files; SKIP_TRAIN=1 to leave it out).
#
# Usage (after `npm run build`): bash bench/run.sh       or: npm run bench
# Environment: ARCHS="atto tiny base"  BATCHES="1 16"  BACKENDS="wasm cpu" (default: all available)
#              REPS=3  WARMUP=1  SKIP_PEERS=1 (ours only)  PEERS_DIR=<dir with the peer scripts>  SKIP_TRAIN=1
#              MAX_RUN_S=150 (non-wasm runs estimated longer are skipped with a note; 0: no limit)
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
PEERS=${PEERS_DIR:-$REPO/../shared/peers}
export ARCHS=${ARCHS:-atto tiny base} BATCHES=${BATCHES:-1 16} REPS=${REPS:-3} WARMUP=${WARMUP:-1} SKIP_PEERS=${SKIP_PEERS:-0} MAX_RUN_S=${MAX_RUN_S:-150}
[ -n "${BACKENDS:-}" ] && export BACKENDS

if [ ! -f dist/bench/table.js ] || [ ! -f dist/src/cli/bench.js ]; then
  echo "error: not built; run npm run build (or npm run bench)" >&2
  exit 1
fi
if [ "$SKIP_PEERS" != 1 ] && [ ! -d "$PEERS" ]; then
  echo "note: no peer scripts at $PEERS; timing ours only" >&2
  SKIP_PEERS=1
fi

out=${OUT:-bench/results/$(date +%Y-%m-%d)-$(hostname -s)}
[ -e "$out.json" ] && out=$out-$(date +%H%M%S) # never overwrite an earlier run
mkdir -p "$(dirname "$out")"
raw=$out.jsonl
: >"$raw"
note() { printf '%s\n' "$*" >&2; jq -cn --arg n "$*" '{note: $n}' >>"$raw"; }

# `convnext bench` once main.ts registers it; until then the same command through a bare program.
if node bin/convnext.js bench --help 2>/dev/null | grep -q -- --arch; then
  bench() { node bin/convnext.js bench "$@"; }
else
  bench() {
    node -e '
      const { Command } = require("commander");
      const { registerBench } = require("./dist/src/cli/bench.js");
      const p = new Command().option("--backend <name>").exitOverride(() => process.exit(1));
      registerBench(p);
      p.parseAsync(process.argv.slice(1), { from: "user" }).catch((e) => { console.error("error: " + e.message); process.exit(1); });
    ' -- bench "$@"
  }
fi

start=$(date +%s)
plan=$(node dist/bench/table.js plan "$raw")
total=$(printf '%s\n' "$plan" | grep -c .)

i=0
while read -r arch batch backend workers threads; do
  i=$((i + 1))
  printf '[%d/%d] %s batch %s %s workers %s threads %s ... ' "$i" "$total" "$arch" "$batch" "$backend" "$workers" "$threads" >&2
  if line=$(bench --arch "$arch" --batch-size "$batch" --backend "$backend" --workers "$workers" --threads "$threads" --reps "$REPS" --warmup "$WARMUP" --json </dev/null 2>/tmp/convnext-bench-err.$$ | tail -n 1) && [ -n "$line" ]; then
    echo "$line" >>"$raw"
    echo "$line" | jq -r '"\(.ms_per_img) ms/img"' >&2
  else
    echo "failed" >&2
    note "ours $arch batch $batch $backend workers $workers threads $threads failed: $(tr '\n' ' ' </tmp/convnext-bench-err.$$ | cut -c1-300)"
  fi
done <<<"$plan"
rm -f /tmp/convnext-bench-err.$$

if [ "$SKIP_PEERS" = 1 ]; then
  note "peers not run (SKIP_PEERS=1 or no peer scripts)"
else
  pairs=$(printf '%s\n' "$plan" | awk '!seen[$1 " " $2]++ {print $1, $2}')
  while read -r arch batch; do
    short=${arch#convnext_}
    printf 'naive TF.js %s batch %s ... ' "$short" "$batch" >&2
    if line=$(NODE_PATH="$REPO/node_modules" node "$PEERS/naive-tfjs.js" "$short" "$batch" wasm "$REPS" </dev/null 2>/tmp/convnext-naive-err.$$ | tail -n 1) && [ -n "$line" ]; then
      echo "$line" >>"$raw"
      echo "$line" | jq -r '"\(.ms_per_img) ms/img"' >&2
    else
      echo "failed" >&2
      note "naive TF.js $short batch $batch failed: $(grep -m1 -E 'Error|Abort' /tmp/convnext-naive-err.$$ | cut -c1-200)"
    fi
    rm -f /tmp/convnext-naive-err.$$
    case $arch in
      convnext_tiny | convnext_small | convnext_base | convnext_large)
        printf 'PyTorch / ONNX Runtime %s batch %s ...\n' "$arch" "$batch" >&2
        if lines=$(bash "$PEERS/peer-bench.sh" "$arch" "$batch" "$REPS" </dev/null 2>/tmp/convnext-peer-err.$$); then :; else
          note "peer-bench $arch batch $batch exited non-zero: $(tail -c 300 /tmp/convnext-peer-err.$$ | tr '\n' ' ')"
        fi
        printf '%s\n' "$lines" | grep '^{' | tee -a "$raw" | jq -r '"  \(.peer) \(.threads)t: \(.ms_per_img) ms/img"' >&2 || true
        rm -f /tmp/convnext-peer-err.$$
        ;;
    esac
  done <<<"$pairs"
  for arch in $(printf '%s\n' "$pairs" | awk '!seen[$1]++ {print $1}'); do
    case $arch in
      convnext_tiny | convnext_small | convnext_base | convnext_large) ;;
      *) note "no PyTorch/ONNX Runtime figures for $arch: torchvision has convnext_tiny/small/base/large only" ;;
    esac
  done
fi

note "total run time $(($(date +%s) - start)) s"
node dist/bench/table.js render "$raw" "$out"
rm -f "$raw"
echo "results: $out.json, $out.md" >&2

# then the training table beside PyTorch's (bench/train.sh: atto 64 b32 and tiny 224 b16, 1 worker and auto)
if [ "${SKIP_TRAIN:-0}" != 1 ]; then
  env -u REPS -u WARMUP SKIP_PEERS="$SKIP_PEERS" bash "$REPO/bench/train.sh" # its own repetitions per arch
fi
