#!/usr/bin/env bash
# `make up`: from a fresh Debian machine to a running all-in-one kubelite
# cluster in the background. Installs what is missing, builds, starts
# `kubelite server`, waits until the API answers, and says how to use it.
set -euo pipefail
cd "$(dirname "$0")/.."

DATA_DIR=${DATA_DIR:-/var/lib/kubelite}
LOG=${LOG:-$DATA_DIR/kubelite.log}
# iptables (the tutorial's view) or nftables.
PROXY_MODE=${PROXY_MODE:-iptables}
PIDFILE=$DATA_DIR/kubelite.pid

if [ "$(id -u)" -ne 0 ]; then
  echo "make up needs root (containers, network namespaces, iptables)" >&2
  exit 1
fi

scripts/install-deps.sh
export PATH=/usr/local/go/bin:$PATH
make build

# The offline images (httpd, busybox) go where the agent imports images from.
mkdir -p "$DATA_DIR/agent/images"
scripts/build-images.sh "$DATA_DIR/agent/images"
if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
  echo "kubelite is already running (pid $(cat "$PIDFILE")); 'make down' stops it"
else
  setsid bin/kubelite server --data-dir "$DATA_DIR" --proxy-mode "$PROXY_MODE" >>"$LOG" 2>&1 </dev/null &
  echo $! >"$PIDFILE"
  echo "started kubelite server (pid $!), logs in $LOG"
fi

# Wait until the node reports Ready (runtime, pod network, proxy and DNS up).
for _ in $(seq 1 240); do
  if bin/kubectl-lite --kubeconfig "$DATA_DIR/admin.kubeconfig" get nodes --no-headers 2>/dev/null | grep -qw Ready; then
    cat <<MSG

kubelite is up.
  bin/kubectl-lite get nodes -o wide
  bin/kubectl-lite apply -f examples/httpd.yml
  bin/kubectl-lite apply -f examples/httpd-svc.yml
  export KUBECONFIG=$DATA_DIR/admin.kubeconfig   # for a real kubectl too
Logs: $LOG    Stop: make down
MSG
    exit 0
  fi
  if ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    echo "kubelite server exited; last log lines:" >&2
    tail -n 30 "$LOG" >&2
    exit 1
  fi
  sleep 0.5
done
echo "kubelite did not become ready in 120 s; see $LOG" >&2
exit 1
