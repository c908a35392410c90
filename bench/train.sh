#!/usr/bin/env bash
# Training speed of convnext-tfjs beside PyTorch in one run: full training steps (forward, backward,
# AdamW) on random data, `convnext bench --train` against ../shared/peers/peer-train-bench.py
# (PyTorch, 1 and 2 threads, the same recipe), and the ratio to PyTorch's best thread count.
#
#   bash bench/train.sh                     (after npm run build; or: npm run bench:train)
#
# Environment: CONFIGS="convnext_atto:64:32 convnext_tiny:224:16" (arch:size:batch)
#              WORKERS="1 auto" (data-parallel worker counts; auto = every core)
#              REPS / WARMUP (ours; default 5/2 for atto, 3/1 for tiny), PEER_STEPS (default 8 / 4)
#              PLAIN=1: each of our rows again with CONVNEXT_RELAXED_SIMD=0 (the kernels without FMA)
#              PEERS_DIR=<dir with peer-train-bench.py>  SKIP_PEERS=1
# The peer runs with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset (that one command only), as the
# issue asks for a fair PyTorch run. Writes bench/results/train-<date>-<host>.jsonl and .md (never
# overwrites an earlier run) and prints the table.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
PEERS=${PEERS_DIR:-$REPO/../shared/peers}
# a git worktree one level further down (wt/<name>) finds the same shared folder
[ -n "${PEERS_DIR:-}" ] || [ -d "$PEERS" ] || PEERS=$REPO/../../shared/peers
CONFIGS=${CONFIGS:-convnext_atto:64:32 convnext_tiny:224:16}
WORKERS=${WORKERS:-1 auto}
SKIP_PEERS=${SKIP_PEERS:-0}
if [ ! -f dist/src/cli/bench.js ]; then
  echo "error: not built; run npm run build (or npm run bench:train)" >&2
  exit 1
fi
if [ "$SKIP_PEERS" != 1 ] && [ ! -f "$PEERS/peer-train-bench.py" ]; then
  echo "note: no $PEERS/peer-train-bench.py; timing ours only" >&2
  SKIP_PEERS=1
fi
out=bench/results/train-$(date +%Y-%m-%d)-$(hostname -s)
[ -e "$out.jsonl" ] && out=$out-$(date +%H%M%S)
mkdir -p "$(dirname "$out")"
raw=$out.jsonl
: >"$raw"
err=$(mktemp)
trap 'rm -f "$err"' EXIT

for cfg in $CONFIGS; do
  IFS=: read -r arch size batch <<<"$cfg"
  case $arch in *tiny* | *small* | *base*) reps=${REPS:-3} warm=${WARMUP:-1} psteps=${PEER_STEPS:-4} ;; *) reps=${REPS:-5} warm=${WARMUP:-2} psteps=${PEER_STEPS:-8} ;; esac
  for run in $WORKERS; do
    [ "${PLAIN:-0}" = 1 ] && run="$run $run:plain"
    for wv in $run; do
    w=${wv%:plain}
    relaxed=1; [ "$wv" = "$w" ] || relaxed=0
    printf 'ours %s %spx batch %s workers %s%s ... ' "$arch" "$size" "$batch" "$w" "$([ $relaxed = 1 ] || echo ', no FMA')" >&2
    if line=$(CONVNEXT_RELAXED_SIMD=$relaxed node bin/convnext.js bench --train --arch "$arch" --image-size "$size" --batch-size "$batch" --workers "$w" --reps "$reps" --warmup "$warm" --json </dev/null 2>"$err" | tail -n 1) && [ -n "$line" ]; then
      echo "$line" | jq -c '{who: "ours", arch, size: .image_size, batch, workers, threads, simd, fma, images_per_s, ms_per_step, worker_ms, reload_ms, write_ms, overhead_ms, update_ms, cpu_util, peak_rss_mb}' >>"$raw"
      echo "$line" | jq -r '"\(.images_per_s) img/s (CPU \(.cpu_util)x)"' >&2
    else
      echo "failed" >&2
      jq -cn --arg n "ours $arch $size $batch workers $w failed: $(tr '\n' ' ' <"$err" | cut -c1-300)" '{note: $n}' >>"$raw"
    fi
    done
  done
  if [ "$SKIP_PEERS" != 1 ]; then
    printf 'PyTorch %s %spx batch %s (1 and 2 threads) ...\n' "$arch" "$size" "$batch" >&2
    if lines=$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 "$PEERS/peer-train-bench.py" "$arch" "$size" "$batch" "$psteps" 1,2 </dev/null 2>"$err"); then :; else
      jq -cn --arg n "peer $arch failed: $(tail -c 300 "$err" | tr '\n' ' ')" '{note: $n}' >>"$raw"
    fi
    printf '%s\n' "$lines" | grep '^{' | jq -c '{who: .peer, arch, size, batch, threads, images_per_s, ms_per_step}' | tee -a "$raw" | jq -r '"  \(.who) \(.threads)t: \(.images_per_s) img/s"' >&2 || true
  fi
done
jq -cn --arg n "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores" '{note: $n}' >>"$raw"

# The table: each of our rows against the best PyTorch row of the same arch/size/batch.
{
  echo "# Training speed, $(date -u +%Y-%m-%dT%H:%MZ), $(hostname -s) ($(nproc) cores)"
  echo
  echo 'Full training steps on random data (forward, backward, AdamW lr 1e-3 wd .05, label smoothing .1,'
  echo '1000 classes, no drop path), `bash bench/train.sh`; ours: `convnext bench --train` (median of the'
  echo 'timed steps), PyTorch: ../shared/peers/peer-train-bench.py (median), OPENBLAS_CORETYPE/L2_SIZE unset.'
  echo
  echo '| arch | size | batch | who | workers / threads | images/s | ms/step | x PyTorch best | CPU | peak RSS MB |'
  echo '|---|---|---|---|---|---|---|---|---|---|'
  jq -rs '
    (map(select(.who != null and .who != "ours")) | group_by([.arch, .size, .batch]) | map({key: "\(.[0].arch)/\(.[0].size)/\(.[0].batch)", value: (map(.images_per_s) | max)}) | from_entries) as $best
    | .[] | select(.who != null)
    | "| \(.arch) | \(.size) | \(.batch) | \(.who) | \(if .who == "ours" then "\(.workers) worker(s), \(.threads) thread(s)\(if .simd == false then ", SIMD off" elif .fma == false then ", no FMA" else "" end)" else "\(.threads) thread(s)" end) | \(.images_per_s) | \(.ms_per_step) | \(if $best["\(.arch)/\(.size)/\(.batch)"] then ((.images_per_s / $best["\(.arch)/\(.size)/\(.batch)"]) * 100 | round / 100) else "-" end) | \(.cpu_util // "-") | \(.peak_rss_mb // "-") |"' "$raw"
  echo
  jq -r 'select(.note) | "- \(.note)"' "$raw"
} >"$out.md"
cat "$out.md"
echo "results: $out.jsonl, $out.md" >&2
