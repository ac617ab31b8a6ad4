#!/usr/bin/env bash
# `make down`: stop the cluster that `make up` started. DATA=1 also removes
# its data directory (etcd, certificates, tokens).
set -euo pipefail
DATA_DIR=${DATA_DIR:-/var/lib/kubelite}
PIDFILE=$DATA_DIR/kubelite.pid

if [ -f "$PIDFILE" ]; then
  pid=$(cat "$PIDFILE")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 1 60); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.5
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    echo "stopped kubelite (pid $pid)"
  fi
  rm -f "$PIDFILE"
fi
if [ "${DATA:-0}" = 1 ]; then
  rm -rf "$DATA_DIR"
  echo "removed $DATA_DIR"
fi
