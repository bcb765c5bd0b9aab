#!/usr/bin/env bash
# The GPU checks of the throughput and deployment issues, as one run of at most ~9 minutes on one
# H100/H200-class GPU (the machine the device tool lends: Python 3.12 with PyTorch, timm and
# onnxruntime, no network, no ROS).
#
#   bash tools/gpu-check.sh --prepare     # here, with network: wheels and reference cases into .gpu-check/
#   bash tools/gpu-check.sh               # there, from the repository root, with .gpu-check/ beside it
#
# .gpu-check/ (ignored by git) holds the pure-Python wheels that machine lacks (open_clip and its
# text dependencies) and the two reference cases with their manifests, read from ../shared
# ($OVSEG_SHARED), never committed. The run prints, and writes to $OUT/gpu-check.log (or
# .gpu-check/gpu-check.log):
#   1. bf16 / fp16 autocast against fp32 on the reference cases (decision flips, score differences);
#   2. FC-CLIP ConvNeXt-L and CAT-Seg ViT-B/16 at 640x480 (and FC-CLIP at its test size, 800):
#      fp32, bf16, bf16 compiled; frames/s, per stage, first call (compilation), CUDA memory;
#   3. the deformable attention's gather (default) against grid_sample (--reference-heads), bf16;
#      batches of 4 images (4 cameras of one size, predict_batch) against single images, bf16;
#   4. the ONNX Runtime execution providers there (TensorRT / CUDA ones, if any).
# Each step has its own time limit; a step that fails or runs out is reported and the next runs.
# GPU_CHECK_DEVICE=cpu GPU_CHECK_REPEAT=1 rehearses the commands here (the bf16 steps are refused:
# autocast is CUDA's; the others mostly run out of time on a CPU).
set -uo pipefail
cd "$(dirname "$0")/.."
DIR=.gpu-check

if [ "${1:-}" = "--prepare" ]; then
  SHARED=${OVSEG_SHARED:-../shared}
  PY=${PYTHON:-python3}
  rm -rf "$DIR" && mkdir -p "$DIR/whl" "$DIR/reference/cases" "$DIR/reference/manifests"
  # the versions of requirements/lock.txt; pure-Python wheels, so the 3.12 there takes them
  pins=$(grep -E '^(open_clip_torch|ftfy|wcwidth)==' requirements/lock.txt)
  # shellcheck disable=SC2086
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d "$DIR/whl" $pins || exit 1
  for c in fcclip_rn50_case0 catseg_vitb16_case0; do
    cp "$SHARED/reference/cases/$c.npz" "$DIR/reference/cases/" || exit 1
  done
  cp "$SHARED/reference/manifests/fcclip_rn50.json.gz" "$SHARED/reference/manifests/catseg_vitb16_384.json.gz" \
    "$DIR/reference/manifests/" || exit 1
  du -sh "$DIR"
  echo "ready: run 'bash tools/gpu-check.sh' on the GPU machine with $DIR carried (the device tool: carry [\"$DIR\"])"
  exit 0
fi

LOG=${OUT:-$DIR}/gpu-check.log
mkdir -p "$(dirname "$LOG")"
exec > >(tee "$LOG") 2>&1
export PYTHONUNBUFFERED=1 OVSEG_SHARED=$PWD/$DIR
PY=${PYTHON:-python3}
if [ -d "$DIR/whl" ]; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/ovseg-site "$DIR"/whl/*.whl || exit 1
  export PYTHONPATH=/tmp/ovseg-site:$PWD
else
  export PYTHONPATH=$PWD
fi
CASES=$DIR/reference/cases
start=$(date +%s)

step() {  # step SECONDS TITLE COMMAND...
  local limit=$1 title=$2
  shift 2
  echo
  echo "=== $title (limit ${limit}s, at $(($(date +%s) - start))s)"
  timeout "$limit" "$@"
  local rc=$?
  [ $rc -eq 0 ] || echo "=== $title: FAILED (exit $rc$([ $rc -eq 124 ] && echo ', time limit'))"
}

DEVICE=${GPU_CHECK_DEVICE:-cuda}
[ "$DEVICE" = cpu ] || nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
"$PY" -c "import torch, open_clip, timm; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.is_available() and torch.cuda.get_device_name(0), '| open_clip', open_clip.__version__, '| timm', timm.__version__)" || exit 1

BENCH=("$PY" -m ovseg_models.bench --device "$DEVICE" --warmup 3 --repeat "${GPU_CHECK_REPEAT:-20}" --outputs semantic,panoptic)
step 80 "precision: bf16 / fp16 autocast against fp32 (CPU fp32 the reference)" \
  "$PY" -m ovseg_models.parity.precision "$CASES/fcclip_rn50_case0.npz" "$CASES/catseg_vitb16_case0.npz" \
  --device "$DEVICE" --precisions fp32,bf16,fp16
step 50 "FC-CLIP ConvNeXt-L 640x480 fp32" "${BENCH[@]}" --model fcclip --variant convnext_large_d_320 \
  --precision fp32 --resolutions 480 --vocab-sizes 20,150
step 60 "FC-CLIP ConvNeXt-L 640x480 and 800 bf16" "${BENCH[@]}" --model fcclip --variant convnext_large_d_320 \
  --precision bf16 --resolutions 480,800 --vocab-sizes 20,150
step 110 "FC-CLIP ConvNeXt-L 640x480 bf16 compiled" "${BENCH[@]}" --model fcclip --variant convnext_large_d_320 \
  --precision bf16 --compile --resolutions 480 --vocab-sizes 20,150
step 45 "FC-CLIP ConvNeXt-L 640x480 bf16, official order of operations (grid_sample deformable attention)" \
  "${BENCH[@]}" --model fcclip --variant convnext_large_d_320 --precision bf16 --resolutions 480 --vocab-sizes 150 \
  --reference-heads
step 50 "FC-CLIP ConvNeXt-L 640x480 bf16, batches of 4 (4 cameras)" "${BENCH[@]}" --model fcclip \
  --variant convnext_large_d_320 --precision bf16 --resolutions 480 --vocab-sizes 150 --batch 4
step 50 "CAT-Seg ViT-B/16 640x480 fp32 and bf16 (resize)" bash -c \
  "${BENCH[*]} --model catseg --variant vitb16_384:resize --precision fp32 --resolutions 480 --vocab-sizes 20,150 &&
   ${BENCH[*]} --model catseg --variant vitb16_384:resize --precision bf16 --resolutions 480 --vocab-sizes 20,150"
step 80 "CAT-Seg ViT-B/16 640x480 bf16 compiled, and batches of 4" bash -c \
  "${BENCH[*]} --model catseg --variant vitb16_384:resize --precision bf16 --compile --resolutions 480 --vocab-sizes 20,150 &&
   ${BENCH[*]} --model catseg --variant vitb16_384:resize --precision bf16 --resolutions 480 --vocab-sizes 150 --batch 4"
step 15 "ONNX Runtime execution providers" "$PY" -c \
  "import onnxruntime as ort; print(ort.__version__, ort.get_available_providers())
try:
    import tensorrt; print('tensorrt', tensorrt.__version__)
except ImportError as e: print('no tensorrt:', e)"
echo
echo "=== done in $(($(date +%s) - start))s; log: $LOG"
