#!/usr/bin/env bash
# Packs what bench/gpu/run-gpu.sh needs on a fresh offline machine into one archive:
#   bench/gpu/pack/gpu-bench.tar.xz = dist/ (built) + node_modules/ pruned to the runtime files for
#   linux-x64 (no source maps, no other platforms' dawn.node, no compilers or test tools).
# Run here after `npm ci && npm run build`; carry bench/gpu/pack (e.g. the device tool's
# carry: ["bench/gpu/pack"]) or copy it with the checkout. run-gpu.sh unpacks it when the checkout
# has no node_modules or dist. ~20-30 MB.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO"
[ -f dist/bench/gpu/gpu_bench.js ] || { echo "error: not built; run npm run build first" >&2; exit 1; }
[ -f node_modules/webgpu/dist/linux-x64/dawn.node ] || { echo "error: node_modules/webgpu missing; run npm ci first" >&2; exit 1; }
mkdir -p bench/gpu/pack
tmp=bench/gpu/pack/.gpu-bench.tar.xz.$$.tmp
tar -cJf "$tmp" \
  --exclude='*.map' --exclude='*.ts' --exclude='*.md' \
  --exclude='node_modules/webgpu/dist/darwin-*' --exclude='node_modules/webgpu/dist/win32-*' \
  --exclude='node_modules/webgpu/dist/linux-arm64' \
  --exclude='node_modules/typescript' --exclude='node_modules/wabt' --exclude='node_modules/mocha' \
  --exclude='node_modules/@types' --exclude='node_modules/chai' \
  --exclude='node_modules/@tensorflow/*/dist/miniprogram' \
  --exclude='node_modules/@tensorflow/*/dist/*.min.js' --exclude='node_modules/@tensorflow/*/dist/*.es2017.js' \
  --exclude='node_modules/@tensorflow/*/dist/*.fesm.js' \
  dist node_modules package.json
sync "$tmp" 2>/dev/null || true
mv "$tmp" bench/gpu/pack/gpu-bench.tar.xz
ls -la bench/gpu/pack/gpu-bench.tar.xz
