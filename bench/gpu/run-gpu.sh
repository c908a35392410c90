#!/usr/bin/env bash
# One short check of the WebGPU backend on a real NVIDIA GPU (fresh machine, offline, a few minutes):
#   ConvNeXt-T 224 on webgpu at batch 1/8/32: first-call time (shader compilation), ms per image,
#   parity of the logits with wasm (same weights and inputs, batches 1 and 8), wasm's ms per image;
#   then `convnext --backend webgpu bench` at batch 8 through the CLI.
# Writes $OUT/webgpu-gpu-<date>.json (OUT defaults to bench/results) and prints it.
#
# What it needs, all carried (no network):
#   - Node >= 20 and glibc >= 2.34 (dawn.node's floor).
#   - node_modules + dist: the checkout's, or bench/gpu/pack/gpu-bench.tar.xz made by
#     bench/gpu/pack.sh on a machine with network (unpacked here when node_modules/dist are absent).
#   - the Vulkan loader (libvulkan.so.1): the system's when present, else extracted (no root) from
#     bench/gpu/vendor/libvulkan1_*.deb (Debian 12's; refresh with
#     `cd bench/gpu/vendor && apt-get download libvulkan1` on a Debian/Ubuntu host).
#   - NVIDIA's Vulkan driver: the ICD json the driver installs (/usr/share/vulkan/icd.d/nvidia_icd.json
#     or /etc/vulkan/icd.d/...), or, in containers that mount only the driver libraries, one written
#     here for libGLX_nvidia.so.0. Containers need NVIDIA_DRIVER_CAPABILITIES to include `graphics`
#     (compute,utility alone mounts no Vulkan driver). VK_ICD_FILENAMES set by the caller wins.
# Environment: ARCH=convnext_tiny BATCHES=1,8,32 PARITY_BATCHES=1,8 REPS=3 IMAGE_SIZE=224
#              VULKAN_LOADER=deb (use the carried .deb even when the system has a loader)
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO"
OUT_DIR=${OUT:-$REPO/bench/results}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
say() { printf 'run-gpu: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

# Runtime checks.
command -v node >/dev/null || die "node not found (Node >= 20 needed)"
node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)' || die "Node $(node --version): >= 20 needed"
glibc=$(getconf GNU_LIBC_VERSION 2>/dev/null | awk '{print $2}')
if [ -n "$glibc" ] && [ "$(printf '%s\n2.34\n' "$glibc" | sort -V | head -1)" != 2.34 ]; then
  die "glibc $glibc: dawn.node needs 2.34 or newer"
fi

# node_modules + dist.
if [ ! -f node_modules/webgpu/dist/linux-x64/dawn.node ] || [ ! -f dist/bench/gpu/gpu_bench.js ]; then
  [ -f bench/gpu/pack/gpu-bench.tar.xz ] || die "no node_modules/dist and no bench/gpu/pack/gpu-bench.tar.xz (make it with bench/gpu/pack.sh)"
  say "unpacking bench/gpu/pack/gpu-bench.tar.xz"
  tar -xJf bench/gpu/pack/gpu-bench.tar.xz
fi

# Vulkan loader.
if [ "${VULKAN_LOADER:-}" != deb ] && ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1 '; then
  say "Vulkan loader: system ($(ldconfig -p | grep -m1 'libvulkan\.so\.1 ' | awk '{print $NF}'))"
else
  deb=$(ls bench/gpu/vendor/libvulkan1_*_amd64.deb 2>/dev/null | head -1)
  [ -n "$deb" ] || die "no libvulkan.so.1 on the system and no bench/gpu/vendor/libvulkan1_*.deb"
  if command -v dpkg-deb >/dev/null; then
    dpkg-deb -x "$deb" "$WORK/vulkan"
  else
    (cd "$WORK" && ar x "$REPO/$deb" && mkdir vulkan && tar -xf data.tar.* -C vulkan)
  fi
  export LD_LIBRARY_PATH="$WORK/vulkan/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  say "Vulkan loader: $(basename "$deb") extracted to $WORK/vulkan"
fi

# NVIDIA ICD.
if [ -z "${VK_ICD_FILENAMES:-}" ]; then
  for f in /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.x86_64.json; do
    [ -f "$f" ] && { export VK_ICD_FILENAMES=$f; break; }
  done
fi
if [ -z "${VK_ICD_FILENAMES:-}" ]; then
  glx=$(ldconfig -p 2>/dev/null | grep -m1 'libGLX_nvidia\.so\.0' | awk '{print $NF}')
  [ -n "$glx" ] || glx=$(ls /usr/lib/x86_64-linux-gnu/libGLX_nvidia.so.0 /usr/lib64/libGLX_nvidia.so.0 2>/dev/null | head -1)
  [ -n "$glx" ] || die "no NVIDIA Vulkan driver: no nvidia_icd.json and no libGLX_nvidia.so.0 (containers: NVIDIA_DRIVER_CAPABILITIES must include graphics)"
  printf '{"file_format_version": "1.0.0", "ICD": {"library_path": "%s", "api_version": "1.3.0"}}\n' "$glx" >"$WORK/nvidia_icd.json"
  export VK_ICD_FILENAMES=$WORK/nvidia_icd.json
fi
say "Vulkan ICD: $VK_ICD_FILENAMES"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader >&2 || true

mkdir -p "$OUT_DIR"
out=$OUT_DIR/webgpu-gpu-$(date +%Y-%m-%d-%H%M%S).json
node dist/bench/gpu/gpu_bench.js --arch "${ARCH:-convnext_tiny}" --batches "${BATCHES:-1,8,32}" \
  --parity-batches "${PARITY_BATCHES:-1,8}" --reps "${REPS:-3}" --image-size "${IMAGE_SIZE:-224}" --out "$out"
say "wrote $out"
say "CLI: convnext --backend webgpu bench --arch ${ARCH:-convnext_tiny} --batch 8"
node bin/convnext.js --backend webgpu bench --arch "${ARCH:-convnext_tiny}" --image-size "${IMAGE_SIZE:-224}" --batch 8 --reps 2 --json | tee "${out%.json}-cli.json"
