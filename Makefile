# attninspect: the two commands of the README's Quick start are `make demo` and `make test`.
SWIFT ?= swift
OUT ?= demo-out
BIN = .build/release/attninspect

.PHONY: deps build release demo test clean

deps:
	@scripts/install-deps.sh

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release

# Runs info, stats and rollout on the real dumps in TestData, writing heatmaps to $(OUT)/.
demo: release
	@mkdir -p $(OUT)
	$(BIN) info TestData/real/vits14_board_small.h5
	$(BIN) stats TestData/real/minilm6_zen_layers_f16.h5 --layer -1
	$(BIN) rollout TestData/real/vits14_board_small.h5 -o $(OUT)/board_rollout.ppm
	$(BIN) grid TestData/real/vits14_board_small.h5 --colormap inferno -o $(OUT)/board_cls_grid.ppm
	$(BIN) rollout TestData/real/minilm6_pride_LHSS_f32.npy -o $(OUT)/pride_rollout.ppm
	$(BIN) entropy TestData/real/minilm6_pride_LHSS_f32.npy -o $(OUT)/pride_entropy.ppm
	@echo "heatmaps written to $(OUT)/"

test: deps
	$(SWIFT) test

clean:
	rm -rf .build $(OUT)
