#!/usr/bin/env bash
# The GPU check of issue 7, for a machine with a GPU (run from the repository root):
#   1. the stories260K oracle on the WebGPU execution provider;
#   2. which ops run where (onnxruntime's profile per provider and op) for stories260K
#      and the qwen05b bench model, f32 and q4: every op listed under CPUExecutionProvider
#      on a GPU run is a fallback;
#   3. the qwen05b bench rows (ours only) on WebGPU.
# onnxruntime's WebGPU provider needs a Vulkan loader (Debian: libvulkan1).
# DEVICE=cuda scripts/gpu-check.sh checks the CUDA provider instead. On a bare machine,
# carry the bundle of scripts/gpu-pack.sh.
set -uo pipefail
cd "$(dirname "$0")/.."
DEVICE="${DEVICE:-webgpu}"
SHARED="$(cd .. && pwd)/shared"
status=0

if [ "$DEVICE" = webgpu ] && ! ldconfig -p | grep -q libvulkan.so.1; then
  echo "gpu-check: no Vulkan loader (libvulkan.so.1); WebGPU will fall back to the CPU (apt-get install libvulkan1)"
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "gpu-check: nvidia-smi not found"
uptime
# A packed bundle (scripts/gpu-pack.sh) arrives built, on a machine without npm.
if command -v npm >/dev/null; then npm run build --silent || exit 1; fi

echo "== 1. oracle on $DEVICE"
node out/src/cli/oracle.js "$SHARED/oracle" --device "$DEVICE" || status=1

echo "== 2. op placement on $DEVICE"
# Builds the random qwen05b model (2 GB, once) the way the bench does.
QWEN=$(node -e "const m=require('./out/test/bench/models');console.log(m.ensureRandomModel(m.RANDOM_MODELS.find(s=>s.name==='qwen05b'),'$SHARED/models/stories260K'))") || exit 1
node out/test/bench/placement.js --device "$DEVICE" --quant f32,q4 "$SHARED/models/stories260K" "$QWEN" || status=1

echo "== 3. qwen05b bench rows on $DEVICE (ours; PyTorch rows need the CPU bench)"
BENCH_DEVICE="$DEVICE" BENCH_SKIP_TORCH=1 BENCH_MODELS=qwen05b BENCH_QUANTS="${BENCH_QUANTS:-f32,q8,q4}" \
  BENCH_THREADS="$(nproc)" BENCH_TIMEOUT_S=1200 node out/test/bench/bench.js || status=1
exit $status
