#!/usr/bin/env bash
# Makes the pictures shown in README.md from the dumps in TestData (run from the repository root after
# `swift build -c release`; BIN=... to use another binary). Every command here is the one quoted in README.
set -euo pipefail
BIN=${BIN:-.build/release/attninspect}
cd "$(dirname "$0")/.."
out=docs/pictures
mkdir -p "$out"
board=TestData/real/vits14_board_small.h5
photo=TestData/real/vits14_board_input.ppm
zen=TestData/real/minilm6_zen_layers_f16.h5
pride=TestData/real/minilm6_pride_LHSS_f32.npy

"$BIN" rollout "$board" --overlay "$photo" --legend -o "$out/board_rollout_overlay.png"
"$BIN" grid "$board" --layer all --head all --range shared --legend -o "$out/board_model_view.png"
"$BIN" grid "$board" --head 2 --threshold 0.6 --overlay "$photo" -o "$out/board_head2_mask.png"
"$BIN" entropy "$pride" --legend -o "$out/pride_entropy.png"
"$BIN" heatmap "$zen" --layer 2 -o "$out/zen_layer2.svg"
"$BIN" heatmap "$zen" --layer 2 --head all -o "$out/zen_layer2_heads.png"
echo "pictures written to $out/"
