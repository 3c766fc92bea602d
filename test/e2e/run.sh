#!/usr/bin/env bash
# `npm run test:e2e`: installs the prerequisites (test/e2e/setup.sh), builds, and runs
# the code-server + Playwright tests (which package and install the .vsix themselves).
set -euo pipefail
cd "$(dirname "$0")/../.."
bash test/e2e/setup.sh
npx tsc -p . >/dev/null || echo "[e2e] tsc reported errors (output still emitted)"
ALIGNER_E2E=1 node --test --test-concurrency=1 out/test/e2e/
