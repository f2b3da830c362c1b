#!/usr/bin/env bash
# Installs the system libraries sdapi-swift links against, skipping what dpkg says is present.
set -euo pipefail
pkgs=(libopenblas-dev libpng-dev libavcodec-dev libavformat-dev libswscale-dev zlib1g-dev pkg-config)
missing=()
for p in "${pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "installing: ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
