#!/usr/bin/env bash
# Fuzzes attninspect's parsers with libFuzzer: NPY header and data, NPZ/zip with inflate, safetensors header,
# torch.save (zip + the restricted pickle reader).
# Builds the targets with -sanitize=fuzzer,address into .build/fuzz (Package.swift adds them when
# ATTNINSPECT_FUZZ is set), seeds each corpus from TestData, runs each for FUZZ_SECONDS (default 60) and
# prints how many inputs each ran. A crash leaves crash-* / leak-* / timeout-* files in .build/fuzz/findings.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${FUZZ_SECONDS:-60}"  # FUZZ_FORMATS (default all four) picks targets
swift="${SWIFT:-swift}"
findings=.build/fuzz/findings
mkdir -p "$findings"
for format in ${FUZZ_FORMATS:-npy npz safetensors pt}; do
    if ! ATTNINSPECT_FUZZ=1 "$swift" build --build-path .build/fuzz -Xswiftc -sanitize=fuzzer,address -Xswiftc -use-ld=lld \
        --product "fuzz-$format" > .build/fuzz/build-$format.log 2>&1; then
        grep -E "error" .build/fuzz/build-$format.log >&2 || tail -20 .build/fuzz/build-$format.log >&2
        echo "fuzz-$format: the build failed" >&2
        exit 1
    fi
    grep -E "Build of" .build/fuzz/build-$format.log || true
    corpus=".build/fuzz/corpus-$format"
    mkdir -p "$corpus"
    # Seeds under 200 KB; for torch.save under 64 KB: the memo and name bombs of TestData/hostile take seconds each
    # under AddressSanitizer and would spend a short run on themselves.
    limit=200k; if [[ "$format" == pt ]]; then limit=64k; fi
    find TestData -name "*.$format" -size -$limit -exec cp -n {} "$corpus/" \;
    echo "fuzz-$format: $(ls "$corpus" | wc -l) inputs in the corpus, ${seconds} s"
    # A dictionary of the format's tokens where one is kept (JSON escapes and surrogates for safetensors headers).
    dictionary=""
    if [[ -f "Fuzz/$format.dict" ]]; then dictionary="-dict=$(pwd)/Fuzz/$format.dict"; fi
    (cd "$findings" && ASAN_OPTIONS=detect_leaks=0 "../debug/fuzz-$format" "../corpus-$format" $dictionary \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 2>&1 |
        grep -E "stat::number_of_executed_units|ERROR|SUMMARY|Done" ) || { echo "fuzz-$format found a problem: see $findings"; exit 1; }
done
echo "no crash, leak or hang found"
