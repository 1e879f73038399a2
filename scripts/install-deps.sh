#!/usr/bin/env bash
# Installs the C libraries attninspect links (libhdf5, OpenBLAS, zlib, libdeflate) and pkg-config, when missing.
# Debian/Ubuntu only; run as root (CI) or with sudo available. Does nothing when all are present.
set -euo pipefail

need=()
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
pkg_ok() { command -v pkg-config >/dev/null 2>&1 && pkg-config --exists "$1"; }
pkg_ok hdf5-serial || need+=(libhdf5-dev)
pkg_ok openblas || need+=(libopenblas-dev)
pkg_ok zlib || need+=(zlib1g-dev)
pkg_ok libdeflate || need+=(libdeflate-dev)

if ((${#need[@]} == 0)); then
  exit 0
fi

echo "attninspect: installing ${need[*]}" >&2
if ! command -v apt-get >/dev/null 2>&1; then
  echo "attninspect: apt-get not found; install the equivalents of: ${need[*]} (pkg-config names hdf5-serial, openblas, zlib, libdeflate)" >&2
  exit 1
fi
SUDO=""
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
    echo "attninspect: run as root, or install: apt-get install ${need[*]}" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
for p in hdf5-serial openblas zlib libdeflate; do
  pkg-config --exists "$p" || { echo "attninspect: pkg-config still cannot find $p after installing" >&2; exit 1; }
done
