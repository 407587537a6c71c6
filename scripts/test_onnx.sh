#!/usr/bin/env bash
# ONNX export checked by ONNX Runtime and TFLite export by the LiteRT interpreter, run by `make test`: trains mnist-cnn, tf-cifar10,
# resnet9 and crnn for a few steps on Fashion-MNIST (real images; Debian's dataset-fashion-mnist),
# exports each (plain and with --fold-bn) and compares onnxruntime with `sprout predict` on
# 300 held-out images (scripts/check_onnx.py). Skips, saying why, when onnxruntime cannot
# be installed (no network and no cached wheel).
set -euo pipefail
SPROUT=${SPROUT:-.build/debug/sprout}
VENV=${ONNX_VENV:-$HOME/.cache/sprout-onnx-venv}
DATA=${FASHION_MNIST:-/usr/share/datasets/fashion-mnist}

if ! { [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"; } ||
   ! { "$VENV/bin/python" -c "import onnxruntime, numpy" 2>/dev/null ||
       "$VENV/bin/pip" install -q onnxruntime numpy; }; then
  echo "test_onnx: skipped — onnxruntime could not be installed into $VENV"
  exit 0
fi
runs=$(mktemp -d)
trap 'rm -rf "$runs"' EXIT
for model in mnist-cnn tf-cifar10 resnet9; do
  "$SPROUT" train --dataset fashion-mnist --data-dir "$DATA" --model "$model" --steps 12 --batch-size 32 \
      --val-split 1000 --seed 3 --threads 2 --run-dir "$runs/$model" > "$runs/$model.log"
done
"$VENV/bin/python" scripts/check_onnx.py --sprout "$SPROUT" --count 300 "$runs"/mnist-cnn "$runs"/tf-cifar10 "$runs"/resnet9
"$VENV/bin/python" scripts/check_onnx.py --sprout "$SPROUT" --count 300 --fold-bn "$runs"/resnet9

# The same runs as TensorFlow Lite flatbuffers in LiteRT's interpreter (PyPI ai-edge-litert).
if "$VENV/bin/python" -c "import ai_edge_litert.interpreter" 2>/dev/null || "$VENV/bin/pip" install -q ai-edge-litert; then
  TFLITE=1
  "$VENV/bin/python" scripts/check_onnx.py --sprout "$SPROUT" --count 300 --format tflite "$runs"/mnist-cnn "$runs"/tf-cifar10 "$runs"/resnet9
else
  TFLITE=0
  echo "test_onnx: TFLite checks skipped — ai-edge-litert could not be installed into $VENV"
fi

# The CRNN line reader (conv stack, bidirectional LSTM, per-column classes): a few steps on
# lines composed from MNIST's digits (MNIST_DIR, default ../shared/data/mnist), or, where MNIST
# is absent, from Fashion-MNIST's images (the same IDX format: lines of garments, which is
# enough to check that ONNX Runtime computes what Sprout computes).
MNIST=${MNIST_DIR:-../shared/data/mnist}
[ -e "$MNIST/train-images-idx3-ubyte.gz" ] || [ -e "$MNIST/train-images-idx3-ubyte" ] || MNIST=$DATA
"$SPROUT" train --recipe mnist-lines --data-dir "$MNIST" --steps 10 --lines 640 --val-split 1000 --seed 3 --threads 2 \
    --run-dir "$runs/crnn" > "$runs/crnn.log"
"$VENV/bin/python" scripts/check_onnx.py --sprout "$SPROUT" --count 40 "$runs"/crnn
"$VENV/bin/python" scripts/check_onnx.py --sprout "$SPROUT" --count 40 --fold-bn "$runs"/crnn

# The 224-px zoo's layers (bottleneck-free ResNet, inverted residuals, EfficientNet-Lite's
# SAME padding and ReLU6) and the photo preprocessing, at 112 px on a generated photo folder
# (128 px images: the photo view of 112 at resize 128 is an exact centre crop).
"$VENV/bin/python" scripts/check_onnx.py --make-photo-folder 128 "$runs/photos"
for model in resnet18 mobilenet-v2 efficientnet-lite0; do
  "$SPROUT" train --dataset folder --data-dir "$runs/photos" --model "$model" --width 0.25 --image-size 112 --steps 3 \
      --batch-size 8 --val-split 12 --seed 3 --threads 2 --run-dir "$runs/$model" > "$runs/$model.log"
done
"$VENV/bin/python" scripts/check_onnx.py --sprout "$SPROUT" --count 24 "$runs"/resnet18 "$runs"/mobilenet-v2 "$runs"/efficientnet-lite0
"$VENV/bin/python" scripts/check_onnx.py --sprout "$SPROUT" --count 24 --fold-bn "$runs"/efficientnet-lite0
if [ "$TFLITE" = 1 ]; then
  "$VENV/bin/python" scripts/check_onnx.py --sprout "$SPROUT" --count 24 --format tflite "$runs"/resnet18 "$runs"/mobilenet-v2 "$runs"/efficientnet-lite0
fi
