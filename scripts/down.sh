#!/usr/bin/env bash
# `make down`: stop the cluster that `make up` started and remove what it
# created on the host: containers, pod network namespaces, the pod bridge,
# host-gw routes and its iptables chains. DATA=1 also removes the data
# directory (etcd, certificates, tokens, images).
set -euo pipefail
DATA_DIR=${DATA_DIR:-/var/lib/kubelite}
PIDFILE=$DATA_DIR/kubelite.pid
# The node `make up` registered: its pods' namespaces are kubelite-<node>-<uid>
# and its bridge kl-<node>; other agents' (a lab's) are left alone.
NODE_NAME=${NODE_NAME:-$(hostname | tr '[:upper:]' '[:lower:]')}

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

# Containers outlive the agent on purpose (a restarted agent re-adopts
# them); `down` means down, so stop them and their mounts.
pkill -KILL -f "containerd-shim.*-address $DATA_DIR/agent/containerd/" 2>/dev/null || true
pkill -TERM -f "containerd --config $DATA_DIR/agent/containerd/" 2>/dev/null || true
mount | awk -v d="$DATA_DIR/agent/" 'index($3, d) == 1 {print $3}' | sort -r | while read -r m; do
  umount -l "$m" 2>/dev/null || true
done
for ns in $(ip netns list 2>/dev/null | awk -v p="kubelite-$NODE_NAME-" 'index($1, p) == 1 {print $1}'); do
  ip netns delete "$ns" 2>/dev/null || true
done
ip link delete "kl-$NODE_NAME" 2>/dev/null || true
ip route flush proto 75 2>/dev/null || true  # the agent's host-gw routes

# The proxy's and the agent's chains: every rule that mentions them goes,
# the rest of each table is restored as it was.
for table in nat filter mangle; do
  if iptables-save -t "$table" 2>/dev/null | grep -q -e KUBE- -e KUBELITE-; then
    iptables-save -t "$table" | grep -v -e KUBE- -e KUBELITE- | iptables-restore -T "$table"
  fi
done
# nftables mode's table (--proxy-mode nftables); "add" first makes the
# delete valid whether or not it exists.
if command -v nft >/dev/null; then
  printf 'add table ip kubelite\ndelete table ip kubelite\n' | nft -f - 2>/dev/null || true
fi
echo "removed kubelite's containers, pod networks, iptables chains and nftables table"

if [ "${DATA:-0}" = 1 ]; then
  rm -rf "$DATA_DIR"
  echo "removed $DATA_DIR"
fi
