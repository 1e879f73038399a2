# attninspect: the two commands of the README's Quick start are `make demo` and `make test`.
SWIFT ?= swift
OUT ?= demo-out
BIN ?= .build/release/attninspect
# What install, man and completions build first; CI's install check sets BUILD_FIRST=build with the debug BIN.
BUILD_FIRST ?= release

.PHONY: deps build release demo test test-browser report-screenshots lint pictures check-pictures check-readme hostile attack-sweep install man completions fuzz mutate sanitize-address sanitize-thread ci-hardening clean

deps:
	@scripts/install-deps.sh

build: deps
	$(SWIFT) build

# One static executable when every archive is installed (scripts/release-flags.sh says which flags): it
# starts without the dynamic loader, in about 1.6 ms. Otherwise the Swift standard library and Foundation
# are linked statically and the binary needs libc, libstdc++, libgcc_s, libm, zlib, libsz/libaec and
# libdeflate at run time (see README).
# Package.swift links libhdf5 and OpenBLAS statically when their archives are there at the time SwiftPM
# evaluates it; a build made before `make deps` installed them keeps the shared ones, which costs ~7 ms at
# every start. The check below says so.
release: deps
	@flags=$$(SWIFT='$(SWIFT)' bash scripts/release-flags.sh) || exit 1; \
	echo "$(SWIFT) build -c release $$flags"; \
	$(SWIFT) build -c release $$flags || { echo "attninspect: the release build failed; if .build predates the installed libraries, rm -rf .build and make release again" >&2; exit 1; }
	@if [ -e /usr/lib/$$(gcc -print-multiarch 2>/dev/null)/libhdf5_serial.a ] && ldd .build/release/attninspect 2>/dev/null | grep -q libhdf5; then \
		echo "attninspect: warning: the binary loads the shared libhdf5 although the static one is installed (an earlier build predates it): rm -rf .build and make release again" >&2; fi

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

# The exporters' live self-test needs Debian's python3-h5py, installed here; ATTNINSPECT_REQUIRE_PYTHON makes
# its absence a failure instead of a skipped test.
test: deps
	@scripts/install-deps.sh --test
	ATTNINSPECT_REQUIRE_PYTHON=1 $(SWIFT) test

# The report's browser tests (Tests/Browser/test_report.py): a real headless Chromium (Debian's chromium package)
# driven by Playwright, installed from PyPI in a venv outside the repository ($(BROWSER_VENV)) when missing.
BROWSER_VENV ?= $(HOME)/.cache/attninspect/browser-venv
test-browser: deps
	@scripts/install-deps.sh --browser
	@[ -x $(BROWSER_VENV)/bin/python ] && $(BROWSER_VENV)/bin/python -c 'import playwright' 2>/dev/null || \
		{ python3 -m venv $(BROWSER_VENV) && $(BROWSER_VENV)/bin/pip install -q playwright; }
	$(SWIFT) build
	$(BROWSER_VENV)/bin/python Tests/Browser/test_report.py --bin .build/debug/attninspect --chromium /usr/bin/chromium

# README's screenshots of the report (docs/screenshots), taken by the browser tests from the TestData dumps. Not
# compared byte for byte as docs/pictures are: Chromium's fonts differ from machine to machine.
report-screenshots: test-browser
	$(BROWSER_VENV)/bin/python Tests/Browser/test_report.py --bin .build/debug/attninspect --chromium /usr/bin/chromium \
		--screenshots docs/screenshots

# The source layout: swift-format's lint with the checked-in .swift-format (4-space indent, lines of at most 120
# characters), and a line-length check for what it cannot wrap (string literals). `swift format -i -r Sources Tests
# Fuzz Package.swift` fixes all but those. Run by .ci/run after make test.
LINT_PATHS = Sources Tests Fuzz Package.swift
lint:
	$(SWIFT) format lint --strict --recursive $(LINT_PATHS)
	python3 scripts/line_length.py 120 $(LINT_PATHS)

# The pictures in docs/pictures, each drawn by the command the README shows beside it (scripts/readme_pictures.py):
# `make pictures` redraws them, `make check-pictures` (part of check-readme, run by .ci/run) fails when one differs.
pictures: release
	python3 scripts/readme_pictures.py update --bin $(BIN)
check-pictures: release
	python3 scripts/readme_pictures.py check --bin $(BIN)

# The executable README (scripts/check_readme.py, run by .ci/run): every example command of README.md and
# exporters/README.md run on TestData and the stand-ins in TestData/readme, its exit status and the output the README
# shows compared, the options table checked against each command's --help, and the pictures as check-pictures.
check-readme: release
	python3 scripts/check_readme.py --bin $(BIN)

# The hostile-dump regression set (TestData/hostile, signals, stdout failures, non-UTF-8 paths) against the release
# binary, which is linked differently from the debug build `make test` runs it on.
hostile: release
	ATTNINSPECT_TEST_BINARY=$(abspath $(BIN)) $(SWIFT) test --filter 'HostileInputCLITests|NothingLostCLITests'

# The attack sweep (scripts/attack_sweep.py): about 1,100 hostile inputs, options and environments through the
# release binary, each outcome classified (crash, hang, memory, escapes, files read or left behind, wrong output).
# About 2 minutes; not part of CI, whose regression set is `make hostile`.
attack-sweep: release
	/usr/bin/python3 scripts/attack_sweep.py $(BIN)

# Installs the binary, the man page and bash/zsh/fish completions under $(DESTDIR)$(PREFIX)
# (default /usr/local), all generated from the command definitions (swift-argument-parser).
PREFIX ?= /usr/local
MANDIR = $(DESTDIR)$(PREFIX)/share/man/man1
install: $(BUILD_FIRST) man completions
	install -d $(DESTDIR)$(PREFIX)/bin $(MANDIR) $(DESTDIR)$(PREFIX)/share/bash-completion/completions \
		$(DESTDIR)$(PREFIX)/share/zsh/site-functions $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d
	install -m 755 $(BIN) $(DESTDIR)$(PREFIX)/bin/attninspect
	install -m 644 .build/man/attninspect.1 $(MANDIR)/attninspect.1
	install -m 644 .build/completions/attninspect.bash $(DESTDIR)$(PREFIX)/share/bash-completion/completions/attninspect
	install -m 644 .build/completions/_attninspect $(DESTDIR)$(PREFIX)/share/zsh/site-functions/_attninspect
	install -m 644 .build/completions/attninspect.fish $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/attninspect.fish
	@echo "installed attninspect, its man page and completions under $(DESTDIR)$(PREFIX)"

# The man page (mdoc), from the command definitions through swift-argument-parser's generate-manual.
man: $(BUILD_FIRST)
	$(SWIFT) build --product generate-manual
	@mkdir -p .build/man
	.build/debug/generate-manual $(BIN) --date $$(git log -1 --format=%cs 2>/dev/null || date +%F) -o .build/man

completions: $(BUILD_FIRST)
	@mkdir -p .build/completions
	$(BIN) --generate-completion-script bash > .build/completions/attninspect.bash
	$(BIN) --generate-completion-script zsh > .build/completions/_attninspect
	$(BIN) --generate-completion-script fish > .build/completions/attninspect.fish

# libFuzzer on the NPY, NPZ (zip + inflate) and safetensors readers, FUZZ_SECONDS per target (default 60).
FUZZ_SECONDS ?= 60
fuzz: deps
	FUZZ_SECONDS=$(FUZZ_SECONDS) SWIFT=$(SWIFT) scripts/fuzz.sh

# Truncated and bit-flipped HDF5 files through info and stats (libhdf5 is not fuzzed itself).
MUTANTS ?= 40
mutate: release
	python3 scripts/mutate_hdf5.py $(BIN) --mutants $(MUTANTS)

# The whole test suite under AddressSanitizer and ThreadSanitizer (the CLI tests run the instrumented
# binary too). Leak checking is off: the only leaks reported are XCTest's and the Swift runtime's.
# SANITIZE_FILTER narrows the run to matching suites (CI runs the core, source, reader and analysis suites).
# halt_on_error makes any report fail the run.
SANITIZE_FILTER ?=
sanitize-address: deps
	ASAN_OPTIONS=detect_leaks=0:halt_on_error=1 $(SWIFT) test --sanitize=address -Xswiftc -use-ld=lld --build-path .build/asan $(if $(SANITIZE_FILTER),--filter '$(SANITIZE_FILTER)')

sanitize-thread: deps
	TSAN_OPTIONS=halt_on_error=1 $(SWIFT) test --sanitize=thread --build-path .build/tsan $(if $(SANITIZE_FILTER),--filter '$(SANITIZE_FILTER)')

# The hardening runs, shortened to fit CI (.ci/run runs this after make test): 10 s of fuzzing per target, 6
# mutants per HDF5 file through the debug binary, both sanitizers over the reader and analysis suites (the
# multithreaded kernels), and make install into a scratch prefix, checked by scripts/check_install.sh.
ci-hardening: deps
	$(MAKE) fuzz FUZZ_SECONDS=10
	$(SWIFT) build --product attninspect
	python3 scripts/mutate_hdf5.py .build/debug/attninspect --mutants 6
	$(MAKE) sanitize-thread SANITIZE_FILTER='AttnCoreTests|AttnSourceTests|AttnReaderTests|AttnAnalysisTests'
	$(MAKE) sanitize-address SANITIZE_FILTER='AttnCoreTests|AttnSourceTests|AttnReaderTests|AttnAnalysisTests'
	scripts/check_install.sh

clean:
	rm -rf .build $(OUT)
