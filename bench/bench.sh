#!/usr/bin/env bash
# `deno task bench`: raise the open-file limit (thousands of sockets), install
# the npm packages of the peers (bun, ws) and of dback under Bun (zod) into
# bench/npm/node_modules unless this is a smoke run, then start the driver.
# Arguments go to bench/run.ts (e.g. --smoke, --servers dback,raw-deno,
# --clients 1000, --quick).
set -euo pipefail
cd "$(dirname "$0")/.."
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
case " $* " in
*" --smoke "*) ;;
*)
  if [ ! -d bench/npm/node_modules/ws ] || [ ! -d bench/npm/node_modules/bun ] ||
    [ ! -d bench/npm/node_modules/zod ]; then
    echo "installing bench peers (bun, ws, zod) from npm into bench/npm/node_modules"
    (cd bench/npm && npm install --no-package-lock --no-audit --no-fund --loglevel=error) ||
      echo "warning: npm install failed; the bun, dback-bun and node-ws rows may be reported as unavailable"
  fi
  ;;
esac
exec deno run -A bench/run.ts "$@"
