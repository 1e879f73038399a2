# attninspect: the two commands of the README's Quick start are `make demo` and `make test`.
SWIFT ?= swift
OUT ?= demo-out
BIN = .build/release/attninspect

.PHONY: deps build release demo test clean

deps:
	@scripts/install-deps.sh

build: deps
	$(SWIFT) build

# The Swift standard library and Foundation are linked statically: the binary needs only libc, libstdc++,
# libgcc_s, libm, zlib, libsz/libaec and libdeflate at run time (see README), and starts in about 8 ms instead of 13.
release: deps
	$(SWIFT) build -c release --static-swift-stdlib

# Runs info, stats and rollout on the real dumps in TestData, writing heatmaps to $(OUT)/.
demo: release
	@mkdir -p $(OUT)
	$(BIN) info TestData/real/vits14_board_small.h5
	$(BIN) stats TestData/real/minilm6_zen_layers_f16.h5 --layer -1
	$(BIN) rollout TestData/real/vits14_board_small.h5 --overlay TestData/real/vits14_board_input.ppm --legend -o $(OUT)/board_rollout.png
	$(BIN) grid TestData/real/vits14_board_small.h5 --layer all --head all --range shared --legend -o $(OUT)/board_model_view.png
	$(BIN) rollout TestData/real/minilm6_pride_LHSS_f32.npy -o $(OUT)/pride_rollout.png
	$(BIN) entropy TestData/real/minilm6_pride_LHSS_f32.npy -o $(OUT)/pride_entropy.png
	$(BIN) tokens TestData/real/minilm6_zen_layers_f16.h5 --layer 2 --query 3
	$(BIN) show TestData/real/vits14_board_small.h5 --rollout --width 64
	@echo "pictures written to $(OUT)/"

test: deps
	$(SWIFT) test

clean:
	rm -rf .build $(OUT)
