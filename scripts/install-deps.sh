#!/usr/bin/env bash
# Installs the C libraries attninspect links (libhdf5, OpenBLAS's threaded build, zlib, libdeflate) when missing.
# Debian/Ubuntu only; run as root (CI) or with sudo available. Does nothing when all are present.
# libhdf5 and OpenBLAS are linked from their static archives (see Package.swift), which these packages ship.
set -euo pipefail

# With --test, also Debian's python3 with numpy and h5py: the exporters' live self-test runs under /usr/bin/python3.
# With --browser, Debian's chromium and python3-venv (make test-browser installs Playwright from PyPI in a venv).
packages=(libhdf5-dev libopenblas-pthread-dev zlib1g-dev libdeflate-dev pkg-config)
if [[ "${1:-}" == "--test" ]]; then packages+=(python3-numpy python3-h5py); fi
if [[ "${1:-}" == "--browser" ]]; then packages=(chromium python3-venv); fi

need=()
have() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
for p in "${packages[@]}"; do
  have "$p" || need+=("$p")
done

if ((${#need[@]} == 0)); then
  exit 0
fi

echo "attninspect: installing ${need[*]}" >&2
if ! command -v apt-get >/dev/null 2>&1; then
  echo "attninspect: apt-get not found; install the equivalents of: ${need[*]} (libhdf5 serial, OpenBLAS threaded (pthread), zlib, libdeflate, with their headers and static archives)" >&2
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
for p in "${need[@]}"; do
  have "$p" || { echo "attninspect: $p is still not installed after apt-get" >&2; exit 1; }
done
