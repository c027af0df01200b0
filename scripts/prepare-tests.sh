#!/usr/bin/env bash
# Installs what the node-driven tests need: the npm packages of tests/integration
# (the official `openai` client, puppeteer-core) and tests/deploy (Kubernetes
# schemas) from their lock files, and Debian's chromium (the chat-page test) and
# nginx (the load-balancer test) when missing. Those tests fail, not skip,
# without them.
set -euo pipefail
cd "$(dirname "$0")/.."
for dir in tests/integration tests/deploy; do
  if [ -f "$dir/package-lock.json" ]; then
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
done
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null 2>&1 || missing+=(nginx)
if [ ${#missing[@]} -gt 0 ]; then
  echo "prepare-tests: installing ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo_cmd apt-get update -qq
  # The package's own service is not wanted: the test runs nginx as the current user.
  $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
