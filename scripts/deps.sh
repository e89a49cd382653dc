#!/usr/bin/env bash
# deps.sh — installs the Debian packages heed needs to build and test, only those missing.
# Called by `make run` and `make test`; safe to run again (it does nothing when all are present).
set -euo pipefail

# clang + its runtime: the sanitizer build and the libFuzzer targets.
packages=(build-essential cmake pkg-config libopenblas-dev libcjson-dev libpcre2-dev clang libclang-rt-14-dev)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps.sh: installing ${missing[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "deps.sh: need root (or sudo) to install ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
