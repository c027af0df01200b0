#!/usr/bin/env bash
# Installs the integration tests' npm packages (the official `openai` client) from the lock file.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -f tests/integration/package-lock.json ]; then
  (cd tests/integration && npm ci --no-audit --no-fund --loglevel=error)
fi
