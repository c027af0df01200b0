#!/usr/bin/env bash
# Installs what kr-serve needs to build and test on Debian 12 / Ubuntu 22.04+.
# Only installs packages that are missing; needs root (or sudo) for apt-get.
set -euo pipefail

pkgs=(g++ cmake make pkg-config nlohmann-json3-dev libgtest-dev libgmock-dev prometheus python3 python3-numpy python3-jsonschema)
missing=()
for p in "${pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)

if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo_cmd apt-get update -qq
  $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
