#!/usr/bin/env bash
# deps.sh — installs the Debian packages heed needs to build and test, only those missing.
# Called by `make run` and `make test`; safe to run again (it does nothing when all are present).
set -euo pipefail

# clang + its runtime: the sanitizer build and the libFuzzer targets.
packages=(build-essential cmake pkg-config libopenblas-dev libcjson-dev libpcre2-dev clang libclang-rt-14-dev)
# libpng + zlib: PNG figures and the viewer's compressed maps.
packages+=(libpng-dev zlib1g-dev)
# chromium: only the viewer's browser test needs it (it says so and skips without it), so failing to
# install it is a warning, not an error.
optional=(chromium)

missing=() missing_optional=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
for p in "${optional[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing_optional+=("$p")
done
[ ${#missing[@]} -eq 0 ] && [ ${#missing_optional[@]} -eq 0 ] && exit 0

echo "deps.sh: installing ${missing[*]} ${missing_optional[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null; then
    echo "deps.sh: need root (or sudo) to install ${missing[*]} ${missing_optional[*]}" >&2
    [ ${#missing[@]} -eq 0 ] && exit 0
    exit 1
  fi
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq || [ ${#missing[@]} -eq 0 ] # without network only the optional ones may stay missing
[ ${#missing[@]} -eq 0 ] || $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
if [ ${#missing_optional[@]} -gt 0 ] &&
   ! $sudo apt-get install -y -qq --no-install-recommends "${missing_optional[@]}" >/dev/null; then
  echo "deps.sh: warning: could not install ${missing_optional[*]} (the viewer's browser test will skip)" >&2
fi
