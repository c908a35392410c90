#!/usr/bin/env bash
# Full-size parity check (npm run test:parity).
#   1. generate the full-size fixtures with PyTorch (test/parity/make_fixtures.py --full)
#      into test/parity/full/ (git-ignored), skipping cases that already exist;
#   2. run the TF.js parity test (dist/test/parity/parity.test.js) on them.
#
# Options:
#   --force            regenerate every case even if it exists
#   --only A,B         only these cases (generation and the test's PARITY_ONLY variable)
#   --generate-only    stop after generating the fixtures
# Environment:
#   PARITY_PYTHON      interpreter with torch (default /usr/bin/python3)
#   PARITY_OUT         fixture folder (default test/parity/full)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

PY="${PARITY_PYTHON:-/usr/bin/python3}"
OUT="${PARITY_OUT:-test/parity/full}"
case "$OUT" in /*) ;; *) OUT="$ROOT/$OUT" ;; esac
FORCE=0
GEN_ONLY=0
ONLY=""

while [ $# -gt 0 ]; do
  case "$1" in
    --force) FORCE=1 ;;
    --only) ONLY="${2:?--only needs a value}"; shift ;;
    --only=*) ONLY="${1#--only=}" ;;
    --generate-only) GEN_ONLY=1 ;;
    -h|--help) sed -n '2,16p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "run.sh: unknown option: $1" >&2; exit 2 ;;
  esac
  shift
done

if ! "$PY" -c 'import torch, torchvision, numpy' >/dev/null 2>&1; then
  cat >&2 <<MSG
run.sh: '$PY' cannot import torch, torchvision and numpy, which the fixture
generator needs. On Debian/Ubuntu install them with:

  apt-get install -y python3-torch python3-torchvision libopenblas0-pthread

(or point PARITY_PYTHON at an interpreter that has them).
MSG
  exit 2
fi

GEN_ARGS=(--full --out "$OUT")
if [ "$FORCE" = 1 ]; then
  :
else
  GEN_ARGS+=(--skip-existing)
fi
if [ -n "$ONLY" ]; then
  GEN_ARGS+=(--only "$ONLY")
fi

echo "== generating full-size parity fixtures in $OUT"
"$PY" "$ROOT/test/parity/make_fixtures.py" "${GEN_ARGS[@]}"

if [ "$GEN_ONLY" = 1 ]; then
  exit 0
fi

TEST_JS="dist/test/parity/parity.test.js"
if [ ! -f "$TEST_JS" ]; then
  echo "run.sh: $TEST_JS not found; build first (npm run build, or npm run test:parity)" >&2
  exit 1
fi

echo "== running $TEST_JS with PARITY_DIR=$OUT"
# A dedicated mocha config: the repository .mocharc.json lists every test as
# "spec", and mocha would add those to a file given on the command line.
PARITY_DIR="$OUT" PARITY_ONLY="$ONLY" npx mocha --config test/parity/mocharc.parity.json "$TEST_JS"
