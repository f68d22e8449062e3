#!/usr/bin/env bash
# Installs tools/package-lock.json's npm packages into tools/node_modules, only when the lock
# file changed since the last install (a stamp holds its hash): the COCO CenterNet's model
# files (@vladmandic/human), read at run time by the centernet_coco bag backend, and
# TensorFlow.js, the reference its tests compare against.
#   bash launch/setup_node.sh [--install-node]
# Without npm it fetches only the model files (tools/fetch_npm_files.py: the registry's tarball,
# checked against the lock file's sha512), and the TF.js cross-check tests skip.
# --install-node (CI: root on Debian/Ubuntu): first apt-get installs nodejs and npm when npm
# is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v npm >/dev/null && [[ "${1:-}" == "--install-node" ]] \
  && [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
  echo "installing nodejs and npm with apt-get"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
if ! command -v npm >/dev/null; then
  # The model files alone, from the npm registry's tarball checked against the lock file; the
  # TF.js cross-check tests then skip, saying so.
  echo "npm not found: fetching the CenterNet model files only (tools/fetch_npm_files.py);" \
    "the TF.js reference tests need Node.js and npm (npm ci --prefix tools)"
  python3 tools/fetch_npm_files.py || echo "not fetched: the centernet_coco bag will say what is missing"
  exit 0
fi
stamp=tools/node_modules/.installed-package-lock.sha256
want=$(sha256sum tools/package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "installing tools/package-lock.json into tools/node_modules (npm ci, about 30 MB)"
  npm ci --prefix tools --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
fi
