#!/usr/bin/env bash
# Packs what scripts/gpu-check.sh needs on a bare GPU machine that has neither Node
# nor network into .gpu/bundle.tar.xz (about 45 MB; .gpu/ is for .git/info/exclude):
# this Node binary, the built out/ and scripts/, the production node_modules with
# onnxruntime-node's linux-x64 binaries only, and ../shared's model, oracle and data.
# There: tar -C /tmp/a -xJf .gpu/bundle.tar.xz && cd /tmp/a/main &&
#        PATH=/tmp/a/bin:$PATH bash scripts/gpu-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
npm run build --silent
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/main" "$stage/shared/datasets" "$stage/bin"
cp "$(readlink -f "$(command -v node)")" "$stage/bin/node"
cp -r out scripts package.json "$stage/main/"
npm ls --omit=dev --all --parseable 2>/dev/null | sed "s#^$repo/##" | grep '^node_modules/' | sort -u |
  while read -r p; do mkdir -p "$stage/main/$(dirname "$p")" && cp -rL "$p" "$stage/main/$p"; done
ort="$stage/main/node_modules/onnxruntime-node/bin/napi-v6"
rm -rf "$ort/darwin" "$ort/win32" "$ort/linux/arm64"
shared=$(readlink -f ../shared)
cp -r "$shared/models" "$shared/oracle" "$stage/shared/"
cp -r "$shared/datasets/stories-style" "$stage/shared/datasets/"
mkdir -p .gpu
tar -C "$stage" -cf - bin main shared | xz -T0 -6 > .gpu/bundle.tar.xz
ls -l .gpu/bundle.tar.xz
