#!/usr/bin/env bash
# Checks `make install` (CI): installs the debug build into a scratch prefix with DESTDIR, then checks that the
# binary runs from there, the man page is an mdoc page naming every subcommand, and the three completion
# scripts complete the subcommands. Leaves nothing behind.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
make --no-print-directory install BUILD_FIRST=build BIN=.build/debug/attninspect PREFIX=/opt/attninspect DESTDIR="$root" >/dev/null
prefix="$root/opt/attninspect"
fail() { echo "check_install: $*" >&2; exit 1; }
"$prefix/bin/attninspect" --version >/dev/null || fail "the installed binary does not run"
man="$prefix/share/man/man1/attninspect.1"
[[ -s "$man" ]] || fail "no man page at $man"
grep -q '^\.Dt ATTNINSPECT 1' "$man" || fail "$man is not an mdoc page for attninspect(1)"
for sub in info stats rollout flow heads heatmap grid entropy show tokens diff verify; do
    grep -qE "^\.It Em $sub\$" "$man" || fail "$man has no entry for the subcommand $sub"
done
bash_completion="$prefix/share/bash-completion/completions/attninspect"
zsh_completion="$prefix/share/zsh/site-functions/_attninspect"
fish_completion="$prefix/share/fish/vendor_completions.d/attninspect.fish"
for f in "$bash_completion" "$zsh_completion" "$fish_completion"; do
    [[ -s "$f" ]] || fail "no completion script at $f"
    grep -q "rollout" "$f" || fail "$f does not complete the subcommands"
done
bash -n "$bash_completion" || fail "$bash_completion is not valid bash"
echo "make install: binary, man page and bash/zsh/fish completions installed and checked"
