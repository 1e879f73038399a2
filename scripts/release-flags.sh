#!/usr/bin/env bash
# Prints the `swift build -c release` flags of the release binary (used by `make release`).
#
# When every archive it needs is installed, the binary is one static executable: glibc, libstdc++, the Swift
# runtime, Foundation, libhdf5, OpenBLAS, zlib, libsz/libaec and libdeflate all linked in by lld. It then
# starts without the dynamic loader (no shared libraries to map, relocate and bind): `--version` takes
# about 1.6 ms instead of 3.4, a small dump's rollout about 3 ms less. lld is used because it resolves
# archives in any order and ignores glibc's link-time notes on dlopen/getpwnam in static programs.
# Otherwise only the Swift standard library and Foundation are linked statically.
set -euo pipefail
# The toolchain's bin folder: from the compiler's own resource path (right behind wrappers such as swiftly's),
# else from where `swift` resolves to.
swift=${SWIFT:-swift}
resources=$($swift -print-target-info 2>/dev/null | sed -n 's/.*"runtimeResourcePath": *"\(.*\)".*/\1/p' || true)
if [[ -n $resources && -d $resources/../../bin ]]; then
  swift_bin=$(cd "$resources/../../bin" && pwd)
else
  swift_bin=$(dirname "$(readlink -f "$(command -v "${swift%% *}")")")
fi
multiarch=$(gcc -print-multiarch 2>/dev/null || echo "$(uname -m)-linux-gnu")
lib=/usr/lib/$multiarch

static=1
for archive in libhdf5_serial.a libsz.a libaec.a libz.a libdeflate.a; do
  [[ -e $lib/$archive ]] || static=0
done
compgen -G "$lib/openblas-pthread/libopenblasp-r*.a" >/dev/null || compgen -G "$lib/openblas-serial/libopenblas-r*.a" >/dev/null || static=0
for archive in libc.a libm.a libstdc++.a; do
  # clang prints the bare name when it finds no such file.
  [[ $("$swift_bin/clang" -print-file-name="$archive" 2>/dev/null) == /* ]] || static=0
done
[[ -x $swift_bin/ld.lld && -e $swift_bin/../lib/swift_static/linux/static-executable-args.lnk ]] || static=0

if ((static)); then
  echo "-Xswiftc -static-executable -Xswiftc -use-ld=lld"
else
  echo "--static-swift-stdlib"
fi
