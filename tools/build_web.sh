#!/usr/bin/env bash
# Builds the operator console (web/) into web/dist, which the C++ build compiles into the
# binary. The locked packages are installed when package-lock.json changed since the last
# install; the Vite build runs when a source is newer than the last build. Quiet when there is
# nothing to do.
set -euo pipefail
cd "$(dirname "$0")/../web"
export npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  echo "build_web: npm install (locked versions)" >&2
  # Not `npm ci`: it refuses a lock file without entries for the other platforms' optional
  # packages (rollup's and esbuild's native builds), which a registry that serves only this
  # platform's leaves out. --no-save installs the locked versions and leaves the lock as it is.
  npm install --no-save --no-audit --no-fund --loglevel=error >/dev/null
fi
if [[ -f dist/index.html ]] && [[ -z "$(find src public index.html package-lock.json vite.config.ts tsconfig.json -newer dist/index.html -print -quit 2>/dev/null)" ]]; then
  exit 0
fi
echo "build_web: vite build" >&2
npm run --silent build >/dev/null
