#!/usr/bin/env bash
# Installs what the end-to-end tests need on a fresh Debian machine, outside the
# repository's node_modules: Debian's chromium, ripgrep and libkrb5-dev, and
# code-server 4.100.3 (VS Code 1.100.3, the newest that runs on Node 20) from the npm
# registry into $ALIGNER_E2E_CACHE/code-server (default /tmp/aligner-e2e).
# Idempotent: a second run only checks. Needs no network beyond Debian and npm.
set -euo pipefail

CACHE="${ALIGNER_E2E_CACHE:-/tmp/aligner-e2e}"
CS_VERSION="4.100.3"
CS_DIR="$CACHE/code-server"

log() { echo "[e2e-setup] $*"; }

# --- Debian packages -------------------------------------------------------------
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v rg >/dev/null 2>&1 || need+=(ripgrep)
dpkg -s libkrb5-dev >/dev/null 2>&1 || need+=(libkrb5-dev)
command -v g++ >/dev/null 2>&1 || need+=(g++)
command -v make >/dev/null 2>&1 || need+=(make)
command -v python3 >/dev/null 2>&1 || need+=(python3)
if ((${#need[@]})); then
  log "installing Debian packages: ${need[*]}"
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# --- code-server ---------------------------------------------------------------
installed_version() {
  node -p "require('$CS_DIR/node_modules/code-server/package.json').version" 2>/dev/null || true
}
if [ "$(installed_version)" = "$CS_VERSION" ] && [ -x "$CS_DIR/node_modules/.bin/code-server" ]; then
  log "code-server $CS_VERSION already installed in $CS_DIR"
  exit 0
fi

# @vscode/ripgrep 1.15.11 (a code-server dependency) downloads rg from GitHub in its
# post-install; give it a cached tarball of Debian's rg instead.
TMPDIR_NODE="$(node -p "require('os').tmpdir()")"
RG_CACHE="$TMPDIR_NODE/vscode-ripgrep-cache-1.15.11"
mkdir -p "$RG_CACHE"
RG_BIN="$(command -v rg)"
for target in x86_64-unknown-linux-musl; do
  tar -czf "$RG_CACHE/ripgrep-v13.0.0-10-$target.tar.gz" -C "$(dirname "$RG_BIN")" "$(basename "$RG_BIN")"
done

mkdir -p "$CS_DIR"
cat > "$CS_DIR/package.json" <<JSON
{
  "name": "aligner-e2e-code-server",
  "private": true,
  "description": "code-server for Aligner's end-to-end tests (installed by test/e2e/setup.sh)",
  "allowScripts": { "code-server": true }
}
JSON
log "installing code-server@$CS_VERSION into $CS_DIR (about 80 s)"
(
  cd "$CS_DIR"
  npm_config_unsafe_perm=true npm_config_yes=true npm install --no-audit --no-fund --loglevel=error \
    "code-server@$CS_VERSION"
)
if [ "$(installed_version)" != "$CS_VERSION" ]; then
  log "code-server did not install"; exit 1
fi
"$CS_DIR/node_modules/.bin/code-server" --version
log "done"
