#!/usr/bin/env bash
# Data-parallel scaling of `convnext train`'s engine on this machine, in one run: per round, one
# training step configuration with 1 worker, the same with N workers, and N independent 1-worker
# processes at once, each on batch/N (what N cores give N separate programs: the ceiling of any
# data-parallel engine here). Rounds interleave the three so that slow minutes hit all of them.
#
#   bash bench/train_scaling.sh            (after npm run build)
#
# Environment: CONFIG=convnext_atto:64:32 (arch:size:batch), N=2 (workers), ROUNDS=3, REPS=8, WARMUP=2.
# Prints a table and writes bench/results/train-scaling-<date>-<host>.{jsonl,md} (never overwrites).
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
CONFIG=${CONFIG:-convnext_atto:64:32}
N=${N:-2}
ROUNDS=${ROUNDS:-3}
REPS=${REPS:-8}
WARMUP=${WARMUP:-2}
IFS=: read -r arch size batch <<<"$CONFIG"
if [ ! -f dist/src/cli/bench.js ]; then
  echo "error: not built; run npm run build" >&2
  exit 1
fi
if [ $((batch % (2 * N))) -ne 0 ]; then
  echo "error: batch $batch must split into $N shares of whole pairs" >&2
  exit 1
fi
out=bench/results/train-scaling-$(date +%Y-%m-%d)-$(hostname -s)
[ -e "$out.jsonl" ] && out=$out-$(date +%H%M%S)
mkdir -p "$(dirname "$out")"
raw=$out.jsonl
: >"$raw"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
bench() { node bin/convnext.js bench --train --arch "$arch" --image-size "$size" --reps "$REPS" --warmup "$WARMUP" --json "$@" </dev/null | tail -n 1; }
record() { jq -c --arg run "$1" --argjson round "$2" '{run: $run, round: $round, batch, workers, images_per_s, ms_per_step, worker_ms, reload_ms, write_ms, overhead_ms, update_ms, cpu_util, peak_rss_mb}' >>"$raw"; }

for r in $(seq 1 "$ROUNDS"); do
  echo "round $r/$ROUNDS (load $(cut -d' ' -f1 /proc/loadavg))" >&2
  bench --batch-size "$batch" --workers 1 | record one "$r"
  bench --batch-size "$batch" --workers "$N" | record engine "$r"
  # Twice the steps, and only the first REPS timed ones count: the processes start together, but the
  # faster one's last steps would run alone (no contention) and flatter the ceiling.
  for k in $(seq 1 "$N"); do bench --batch-size $((batch / N)) --workers 1 --reps $((2 * REPS)) >"$tmp/p$k.json" & done
  wait
  for k in $(seq 1 "$N"); do
    jq -c --argjson reps "$REPS" '.step_ms = .step_ms[0:$reps] | .ms_per_step = (.step_ms | sort | if length % 2 == 1 then .[length / 2 | floor] else (.[length / 2 - 1] + .[length / 2]) / 2 end) | .images_per_s = ((1000 * .batch / .ms_per_step) * 10 | round / 10)' "$tmp/p$k.json" | record independent "$r"
  done
done
jq -cn --arg n "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores" '{note: $n}' >>"$raw"

{
  echo "# Data-parallel scaling, $(date -u +%Y-%m-%dT%H:%MZ), $(hostname -s) ($(nproc) cores)"
  echo
  echo "\`bash bench/train_scaling.sh\` (CONFIG=$CONFIG N=$N ROUNDS=$ROUNDS REPS=$REPS): \`convnext bench --train\`, random data,"
  echo "median step of each run. *one*: 1 worker, batch $batch; *engine*: $N workers, batch $batch; *independent*: $N separate"
  echo "1-worker processes at once, batch $((batch / N)) each, the median of their first $REPS timed steps (while all run;"
  echo "their images/s summed: what the machine gives $N programs)."
  echo
  echo '| round | one img/s | engine img/s | engine worker / overhead / update ms | independent img/s (sum) | engine / one | independent / one | engine / independent |'
  echo '|---|---|---|---|---|---|---|---|'
  jq -rs '
    group_by(.round)[] | select(.[0].round != null)
    | (map(select(.run == "one"))[0]) as $one | (map(select(.run == "engine"))[0]) as $eng
    | (map(select(.run == "independent")) | map(.images_per_s) | add) as $ind
    | def r2: (. * 100 | round / 100);
    "| \($one.round) | \($one.images_per_s) | \($eng.images_per_s) | \($eng.worker_ms) / \($eng.overhead_ms) / \($eng.update_ms) | \($ind * 10 | round / 10) | \($eng.images_per_s / $one.images_per_s | r2)x | \($ind / $one.images_per_s | r2)x | \($eng.images_per_s / $ind | r2)x |"' "$raw"
  echo
  jq -rs '
    def med: sort | if length % 2 == 1 then .[length / 2 | floor] else (.[length / 2 - 1] + .[length / 2]) / 2 end;
    def r2: (. * 100 | round / 100);
    (map(select(.round != null)) | group_by(.round) | map({
      one: (map(select(.run == "one"))[0].images_per_s),
      eng: (map(select(.run == "engine"))[0].images_per_s),
      ind: (map(select(.run == "independent")) | map(.images_per_s) | add)})) as $rs
    | "Medians over rounds: engine / one **\($rs | map(.eng / .one) | med | r2)x**, independent / one \($rs | map(.ind / .one) | med | r2)x, engine / independent **\($rs | map(.eng / .ind) | med | r2)x**."' "$raw"
  echo
  jq -r 'select(.note) | "- \(.note)"' "$raw"
} >"$out.md"
cat "$out.md"
