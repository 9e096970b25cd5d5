#!/usr/bin/env bash
# `deno task bench`: raise the open-file limit (thousands of sockets), install
# the npm packages of the peers (bun, ws) and of dback under Bun (zod) into
# bench/npm/node_modules unless this is a smoke run, then start the driver.
# Arguments go to bench/run.ts (e.g. --smoke, --servers dback,raw-deno,
# --clients 1000, --quick).
set -euo pipefail
cd "$(dirname "$0")/.."
for arg in "$@"; do
  if [ "$arg" = "--help" ] || [ "$arg" = "-h" ]; then
    cat <<'EOF'
Usage: deno task bench [options]

Benchmarks dback against bare servers (bench/README.md): starts the servers and load generators,
prints tables, writes JSON and Markdown to out/bench/. The full suite takes minutes.
  --smoke                 a ~5 s end-to-end check of the harness (no npm install)
  --quick                 shorter windows
  --servers <a,b,...>     which servers (e.g. dback,raw-deno,bun,node-ws,dback-bun,
                          dback-node,dback-deno-node)
  --clients <n,m,...>     client counts (default 100,1000,5000)
  --workers <n>           load generator processes
  --out <dir|file.json>   where the reports go (default out/bench); a .json path writes one
                          result file to commit under bench/results/
  --runs <n>              interleaved runs of every server (default 1)
  --cpu-reps <n>          fixed-rate CPU windows per run, median taken
  --join-reps <n>         warm re-join rounds per run, median taken (default: --cpu-reps)
  --warmup <n>            joins of the load generators against a throwaway instance of every
                          server before run 1 (default 2000, 0 with --smoke)
  --note <text>           a note stored in the result file
  --table <file...>       print result file(s) as the peers table the docs embed (no run)
  --report <file>         print every table of one result file (no run)
  --threads <file...>     print the server's CPU per frame by kind of thread (no run)
  --stall-clients <n>     clients in the stalled-reader scenario (default 1000)
  --storm-users <n>       users in the join-storm scenario (default 10000)
  -h, --help              print this help
EOF
    exit 0
  fi
done
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
case " $* " in
*" --smoke "* | *" --table "* | *" --report "*) ;;
*)
  if [ ! -d bench/npm/node_modules/ws ] || [ ! -d bench/npm/node_modules/bun ] ||
    [ ! -d bench/npm/node_modules/zod ]; then
    echo "installing bench peers (bun, ws, zod) from npm into bench/npm/node_modules"
    (cd bench/npm && npm install --no-package-lock --no-audit --no-fund --loglevel=error) ||
      echo "warning: npm install failed; the bun, dback-bun and node-ws rows may be reported as unavailable"
  fi
  if [ ! -d node_modules/ws ] || [ ! -d node_modules/zod ]; then
    echo "installing dback's npm dependencies (zod, ws, ioredis) into node_modules for dback-node"
    npm install --no-package-lock --no-save --no-audit --no-fund --loglevel=error ||
      echo "warning: npm install failed; the dback-node row may be reported as unavailable"
  fi
  ;;
esac
exec deno run -A bench/run.ts "$@"
