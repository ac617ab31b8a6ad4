#!/usr/bin/env bash
# The one-machine lab: a three-node kubelite cluster made of network
# namespaces, shaped like the Vagrant lab (docs/lab.md).
#
#   kl-switch   a bridge, br0: the lab network 192.168.56.0/24 (192.168.56.1: the nodes' gateway)
#   kl-node1    192.168.56.11  kubelite server (API server, etcd, controllers, DNS, its agent)
#   kl-node2    192.168.56.12  kubelite agent
#   kl-node3    192.168.56.13  kubelite agent
#   kl-client   192.168.56.100 a machine outside the cluster, on the lab network only
#
# A node's processes also get mount and UTS namespaces of their own (a /sys
# showing the node's interfaces, the node's name as hostname). Nothing is
# added to the machine's own network: the only thing running there is a
# forwarder from 127.0.0.1:$KUBELITE_LAB_API_PORT to the API server inside
# kl-node1, so that kubectl-lite works from the machine itself.
#
#   scripts/lab.sh up              build the lab and wait until the 3 nodes are Ready (idempotent)
#   scripts/lab.sh down            stop and remove everything the lab made, even after a crash
#   scripts/lab.sh status          namespaces, processes and nodes
#   scripts/lab.sh env             eval "$(scripts/lab.sh env)" to use kubectl-lite from here
#   scripts/lab.sh exec NODE CMD   run CMD on node1, node2, node3 or client
#
# Settings (environment): KUBELITE_LAB_DIR (state, data and logs;
# /var/lib/kubelite-lab), KUBELITE_BIN (the kubelite binary; bin/kubelite),
# KUBELITE_LAB_API_PORT (the forwarder's port; 16443),
# KUBELITE_LAB_READY_TIMEOUT (seconds `up` waits for the nodes; 240),
# KUBELITE_PROXY_MODE (the nodes' --proxy-mode: iptables or nftables; iptables),
# KUBELITE_PROXY_MODES (per-node exceptions, "node3=nftables node2=iptables").
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
lab_dir=${KUBELITE_LAB_DIR:-/var/lib/kubelite-lab}
kubelite=${KUBELITE_BIN:-$repo/bin/kubelite}
api_port=${KUBELITE_LAB_API_PORT:-16443}
ready_timeout=${KUBELITE_LAB_READY_TIMEOUT:-240}
proxy_mode=${KUBELITE_PROXY_MODE:-iptables}
proxy_modes=${KUBELITE_PROXY_MODES:-}

# The lab network, as in the Vagrantfile.
readonly subnet_prefix=192.168.56
readonly switch_ns=kl-switch
# The switch's own address: the nodes' default gateway, as a LAN's router
# would be. It leads nowhere (the switch forwards nothing), but a node
# needs a route for Service IPs: its own connections to them are routed
# before iptables rewrites them to a pod.
readonly gateway_ip=192.168.56.1
readonly nodes=(node1 node2 node3)
readonly server_node=node1
readonly loadbalancer_pool=192.168.56.240/28
# Names outside the cluster are forwarded to the outside client's address:
# the lab has no way out, so whatever resolver runs there (the e2e tests
# start one) is the lab's "internet" DNS.
readonly dns_upstream=$subnet_prefix.100:53
readonly server_port=6443

# Where everything lives: one folder per node (its data dir, with
# containerd's), and beside it the node's log and pid file.
images_dir=$lab_dir/images
lab_kubeconfig=$lab_dir/kubeconfig
forwarder_pidfile=$lab_dir/forwarder.pid
forwarder_log=$lab_dir/forwarder.log

die() {
  echo "lab: $*" >&2
  exit 1
}

node_ip() {
  case $1 in
    node1) echo "$subnet_prefix.11" ;;
    node2) echo "$subnet_prefix.12" ;;
    node3) echo "$subnet_prefix.13" ;;
    client) echo "$subnet_prefix.100" ;;
    *) die "unknown node $1 (node1, node2, node3 or client)" ;;
  esac
}

netns_of() { echo "kl-$1"; }
server_ip() { node_ip "$server_node"; }

# proxy_mode_of NODE: the node's --proxy-mode (KUBELITE_PROXY_MODES, else
# KUBELITE_PROXY_MODE).
proxy_mode_of() {
  local entry
  for entry in $proxy_modes; do
    if [ "${entry%%=*}" = "$1" ]; then
      echo "${entry#*=}"
      return
    fi
  done
  echo "$proxy_mode"
}
server_kubeconfig() { echo "$lab_dir/$server_node/admin.kubeconfig"; }
node_token() { echo "$lab_dir/$server_node/node-token"; }

require_root() {
  [ "$(id -u)" -eq 0 ] || die "must run as root (network namespaces, containers, iptables)"
}

require_tools() {
  local tool
  for tool in ip unshare nsenter setsid mount hostname; do
    command -v "$tool" >/dev/null || die "$tool is missing (Debian: iproute2, util-linux, mount, hostname)"
  done
  [ -x "$kubelite" ] || die "$kubelite not found: run 'make build'"
}

netns_exists() {
  [ -e "/run/netns/$1" ]
}

# The inner shell that makes a node's namespaces look like a machine of
# its own: its hostname, and a /sys that shows the node's network
# interfaces (as `ip netns exec` mounts it) yet keeps the machine's cgroup
# hierarchies, which runc needs and a fresh sysfs would hide. The mounts
# live and die with the node's mount namespace.
# shellcheck disable=SC2016 # $0, $@ and $stash belong to the inner shell
readonly become_node='set -e
hostname "$0"
stash=$(mktemp -d /run/kubelite-lab-cgroups.XXXXXX)
mount --rbind /sys/fs/cgroup "$stash"
mount -t sysfs sysfs /sys
mount --move "$stash" /sys/fs/cgroup
rmdir "$stash"
exec "$@"'

# node_launcher ARRAY NODE: fills ARRAY with the command that runs what
# follows it "on" NODE: in the node's network namespace, and in mount and
# UTS namespaces of its own.
node_launcher() {
  local -n launcher=$1
  # shellcheck disable=SC2034 # a nameref: the caller reads it
  launcher=(unshare --mount --uts --propagation slave --
    nsenter --net="/run/netns/$(netns_of "$2")" --
    sh -c "$become_node" "$2")
}

# on_node NODE CMD...: run CMD on the node.
on_node() {
  local -a launch
  node_launcher launch "$1"
  shift
  "${launch[@]}" "$@"
}

# --- network ---------------------------------------------------------------

ensure_netns() {
  local ns=$1
  netns_exists "$ns" || ip netns add "$ns"
  ip -n "$ns" link set lo up
}

ensure_switch() {
  ensure_netns "$switch_ns"
  ip -n "$switch_ns" link show br0 >/dev/null 2>&1 ||
    ip -n "$switch_ns" link add br0 type bridge
  ip -n "$switch_ns" addr replace "$gateway_ip/24" dev br0
  ip -n "$switch_ns" link set br0 up
}

# plug_in NODE: the node's eth0 is a veth whose other end is a port of the
# switch's bridge. The pair is created inside the namespaces, never in the
# machine's own.
plug_in() {
  local node=$1 ns
  ns=$(netns_of "$node")
  ensure_netns "$ns"
  if ! ip -n "$ns" link show eth0 >/dev/null 2>&1; then
    # A port left by a crash whose node end is gone would block the name.
    ip -n "$switch_ns" link del "$node" 2>/dev/null || true
    ip -n "$ns" link add eth0 type veth peer name "$node" netns "$switch_ns"
  fi
  ip -n "$switch_ns" link set "$node" master br0 up
  ip -n "$ns" addr replace "$(node_ip "$node")/24" dev eth0
  ip -n "$ns" link set eth0 up
  # The outside client knows the lab network only.
  [ "$node" = client ] || ip -n "$ns" route replace default via "$gateway_ip"
}

# --- processes -------------------------------------------------------------

# is_ours PIDFILE: the pid file names a live kubelite process of this lab.
is_ours() {
  local pid cmdline
  [ -f "$1" ] || return 1
  pid=$(cat "$1")
  [ -n "$pid" ] || return 1
  cmdline=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || return 1
  [[ $cmdline == *kubelite* ]]
}

# start_on_node NODE CMD...: start CMD in the background on NODE, in a
# session of its own (Ctrl-C in this terminal does not reach it), with its
# output in NODE.log and its pid in NODE.pid.
start_on_node() {
  local node=$1
  shift
  if is_ours "$lab_dir/$node.pid"; then
    echo "$node: already running (pid $(cat "$lab_dir/$node.pid"))"
    return
  fi
  mkdir -p "$lab_dir/$node"
  local -a launch
  node_launcher launch "$node"
  # setsid does not fork here (a background job leads no process group), and
  # unshare, nsenter and sh exec in turn: $! is the kubelite process itself.
  setsid "${launch[@]}" "$@" >>"$lab_dir/$node.log" 2>&1 </dev/null &
  echo $! >"$lab_dir/$node.pid"
  echo "$node: started $(basename "$1") $2 (pid $!), log $lab_dir/$node.log"
}

start_server() {
  local ip
  ip=$(server_ip)
  start_on_node "$server_node" "$kubelite" server \
    --data-dir "$lab_dir/$server_node" \
    --bind-address "$ip" --advertise-address "$ip" --port "$server_port" \
    --etcd-listen-client-url http://127.0.0.1:2379 \
    --etcd-listen-peer-url http://127.0.0.1:2380 \
    --loadbalancer-pool "$loadbalancer_pool" \
    --node-name "$server_node" --node-ip "$ip" \
    --images-dir "$images_dir" \
    --cluster-dns-upstream "$dns_upstream" \
    --proxy-mode "$(proxy_mode_of "$server_node")"
}

start_agent() {
  local node=$1
  start_on_node "$node" "$kubelite" agent \
    --server "https://$(server_ip):$server_port" \
    --token-file "$(node_token)" \
    --node-name "$node" --node-ip "$(node_ip "$node")" \
    --data-dir "$lab_dir/$node" \
    --images-dir "$images_dir" \
    --cluster-dns-upstream "$dns_upstream" \
    --proxy-mode "$(proxy_mode_of "$node")"
}

# The forwarder runs in the machine's own namespace and dials the API
# server from inside the server node's (internal/netnsproxy).
start_forwarder() {
  if is_ours "$forwarder_pidfile"; then
    return
  fi
  setsid "$kubelite" netns-proxy \
    --netns "/run/netns/$(netns_of "$server_node")" \
    --listen "127.0.0.1:$api_port" \
    --target "$(server_ip):$server_port" \
    >>"$forwarder_log" 2>&1 </dev/null &
  echo $! >"$forwarder_pidfile"
  echo "forwarder: 127.0.0.1:$api_port -> $(server_ip):$server_port in $(netns_of "$server_node") (pid $!)"
}

# write_lab_kubeconfig: the server's admin kubeconfig, pointed at the
# forwarder (the server's certificate is valid for 127.0.0.1).
write_lab_kubeconfig() {
  local tmp=$lab_kubeconfig.tmp
  (umask 077 && sed "s#^\(\s*server:\s*\).*#\1https://127.0.0.1:$api_port#" "$(server_kubeconfig)" >"$tmp")
  mv "$tmp" "$lab_kubeconfig"
}

kubectl_here() {
  "$(dirname "$kubelite")/kubectl-lite" --kubeconfig "$lab_kubeconfig" "$@"
}

# stop_process PIDFILE: SIGTERM, then SIGKILL after 30 s.
stop_process() {
  local pidfile=$1 pid
  if is_ours "$pidfile"; then
    pid=$(cat "$pidfile")
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 60); do
      [ -d "/proc/$pid" ] || break
      sleep 0.5
    done
    if [ -d "/proc/$pid" ]; then
      echo "pid $pid did not stop in 30 s: killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$pidfile"
}

# descendants PID...: the given pids and all their descendants.
descendants() {
  local -A children=()
  local stat rest pid ppid
  for stat in /proc/[0-9]*/stat; do
    read -r rest 2>/dev/null <"$stat" || continue
    pid=${rest%% *}
    rest=${rest##*) } # after the command name, which may hold spaces
    read -r _ ppid _ <<<"$rest"
    children[$ppid]+="$pid "
  done
  local queue=("$@") out=()
  while [ ${#queue[@]} -gt 0 ]; do
    pid=${queue[0]}
    queue=("${queue[@]:1}")
    out+=("$pid")
    # shellcheck disable=SC2206 # a space-separated list of pids
    queue+=(${children[$pid]:-})
  done
  echo "${out[@]}"
}

# kill_leftovers NS: SIGKILL whatever still runs in a lab namespace
# (containerd, its shims) and everything they started (the containers,
# which live in pod namespaces of their own).
kill_leftovers() {
  local ns=$1 pids doomed
  netns_exists "$ns" || return 0
  for _ in 1 2 3 4 5; do
    read -ra pids <<<"$(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ')"
    [ ${#pids[@]} -gt 0 ] || return 0
    read -ra doomed <<<"$(descendants "${pids[@]}")"
    kill -KILL "${doomed[@]}" 2>/dev/null || true
    sleep 0.5
  done
  echo "processes left in $ns: $(ip netns pids "$ns" | tr '\n' ' ')" >&2
}

# lab_containers: "<containerd namespace>/<id>" of every container the
# lab's containerds have run; their bundle folders outlive a crash.
lab_containers() {
  [ -d "$lab_dir" ] || return 0
  find "$lab_dir" -regex '.*/root/io\.containerd\.runtime\.v2\.task/[^/]+/[^/]+' -type d |
    awk -F/ '{ print $(NF-1) "/" $NF }'
}

# remove_container NS/ID: what the lab's containerds leave outside the
# lab's folder when they die with their containers: the container's
# processes (a container whose shim is gone is reparented away from the
# lab's namespaces), its cgroup in every hierarchy (runc makes /NS/ID) and
# runc's state.
remove_container() {
  local cgroup=/$1 mount pid
  [[ $1 == ?*/?* ]] || return 0
  for mount in $(findmnt -rn -t cgroup,cgroup2 -o TARGET); do
    [ -f "$mount$cgroup/cgroup.procs" ] || continue
    while read -r pid; do
      kill -KILL "$pid" 2>/dev/null || true
    done <"$mount$cgroup/cgroup.procs"
  done
  for mount in $(findmnt -rn -t cgroup,cgroup2 -o TARGET); do
    [ -d "$mount$cgroup" ] || continue
    # A killed process leaves its cgroup once reaped: try for a while.
    for _ in $(seq 1 20); do
      rmdir "$mount$cgroup" 2>/dev/null && break
      sleep 0.25
    done
  done
  rm -rf "/run/containerd/runc/$1"
}

# --- commands --------------------------------------------------------------

cmd_up() {
  require_root
  require_tools
  mkdir -p "$lab_dir"
  chmod 700 "$lab_dir"

  ensure_switch
  for node in "${nodes[@]}" client; do
    plug_in "$node"
  done

  if [ ! -f "$images_dir/httpd.tar" ] || [ ! -f "$images_dir/busybox.tar" ]; then
    echo "building the offline images into $images_dir"
    "$repo/scripts/build-images.sh" "$images_dir"
  fi

  start_server
  wait_for_server
  for node in "${nodes[@]}"; do
    [ "$node" = "$server_node" ] || start_agent "$node"
  done
  start_forwarder
  write_lab_kubeconfig
  wait_for_ready_nodes

  cat <<MSG

The lab is up: ${#nodes[@]} nodes on $subnet_prefix.0/24, an outside client at $(node_ip client).
  eval "\$($0 env)"; kubectl-lite get nodes -o wide     # kubectl-lite from this shell
  $0 exec node2 iptables-save -t nat                     # a command on a node
  $0 exec client curl -s $(node_ip node1):31000           # ... or on the outside client
Walk-through: docs/lab.md    Logs: $lab_dir/*.log    Remove it all: $0 down
MSG
}

# wait_for_server: until the server has written its credentials and answers.
wait_for_server() {
  local deadline=$((SECONDS + 120))
  until [ -f "$(node_token)" ] && [ -f "$(server_kubeconfig)" ] &&
    on_node "$server_node" "$(dirname "$kubelite")/kubectl-lite" \
      --kubeconfig "$(server_kubeconfig)" get namespaces >/dev/null 2>&1; do
    is_ours "$lab_dir/$server_node.pid" || fail_with_logs "the server on $server_node exited"
    [ $SECONDS -lt $deadline ] || fail_with_logs "the server on $server_node did not answer in 120 s"
    sleep 1
  done
}

# wait_for_ready_nodes: until every node reports Ready through the forwarder.
wait_for_ready_nodes() {
  local deadline=$((SECONDS + ready_timeout)) ready=0 node listed
  while :; do
    listed=$(kubectl_here get nodes --no-headers 2>/dev/null) || listed=""
    ready=$(awk '$2 == "Ready"' <<<"$listed" | wc -l)
    [ "$ready" -ge ${#nodes[@]} ] && break
    for node in "${nodes[@]}"; do
      is_ours "$lab_dir/$node.pid" || fail_with_logs "the kubelite process of $node exited"
    done
    is_ours "$forwarder_pidfile" || fail_with_logs "the forwarder exited"
    [ $SECONDS -lt $deadline ] || fail_with_logs "only $ready of ${#nodes[@]} nodes Ready after $ready_timeout s"
    sleep 2
  done
  echo "all ${#nodes[@]} nodes are Ready"
}

fail_with_logs() {
  local log
  echo "lab: $*" >&2
  for log in "$lab_dir"/*.log; do
    [ -f "$log" ] || continue
    echo "--- last lines of $log" >&2
    tail -n 25 "$log" >&2
  done
  echo "(the lab is left as it is for a look around; '$0 down' removes it)" >&2
  exit 1
}

cmd_down() {
  require_root
  stop_process "$forwarder_pidfile"
  # Agents first, so that the server sees them go; then the server.
  local node
  for node in "${nodes[@]}"; do
    [ "$node" = "$server_node" ] || stop_process "$lab_dir/$node.pid" &
  done
  wait
  stop_process "$lab_dir/$server_node.pid"

  for node in "${nodes[@]}" client; do
    kill_leftovers "$(netns_of "$node")"
  done
  local container
  for container in $(lab_containers); do
    remove_container "$container"
  done
  remove_pod_netns_pins
  for node in "${nodes[@]}" client; do
    netns_exists "$(netns_of "$node")" && ip netns del "$(netns_of "$node")"
  done
  netns_exists "$switch_ns" && ip netns del "$switch_ns"
  rm -rf "$lab_dir"
  echo "the lab is gone"
}

# remove_pod_netns_pins: the agents pin their pods' namespaces at
# /run/netns/kubelite-<node>-<pod uid>, mounted inside their own mount
# namespaces; once those are gone, only empty files are left here. A pin
# that is still a mount point belongs to someone else and stays.
remove_pod_netns_pins() {
  local node pin
  for node in "${nodes[@]}"; do
    for pin in /run/netns/kubelite-"$node"-????????-????-????-????-????????????; do
      [ -f "$pin" ] || continue
      mountpoint -q "$pin" || rm -f "$pin"
    done
  done
}

cmd_status() {
  local node ns state
  for node in "${nodes[@]}" client; do
    ns=$(netns_of "$node")
    if ! netns_exists "$ns"; then
      state="no namespace"
    elif [ "$node" = client ]; then
      state="up"
    elif is_ours "$lab_dir/$node.pid"; then
      state="running (pid $(cat "$lab_dir/$node.pid"), log $lab_dir/$node.log)"
    else
      state="not running"
    fi
    printf '%-8s %-15s %-10s %s\n' "$node" "$(node_ip "$node")" "$ns" "$state"
  done
  if is_ours "$forwarder_pidfile"; then
    echo "forwarder 127.0.0.1:$api_port running (pid $(cat "$forwarder_pidfile"))"
  else
    echo "forwarder not running"
  fi
  if [ -f "$lab_kubeconfig" ]; then
    echo
    kubectl_here get nodes -o wide || true
  fi
}

cmd_env() {
  cat <<ENV
export KUBECONFIG=$lab_kubeconfig
export PATH=$(dirname "$kubelite"):\$PATH
ENV
}

cmd_exec() {
  [ $# -ge 2 ] || die "usage: $0 exec NODE CMD..."
  local node=$1
  shift
  node_ip "$node" >/dev/null
  netns_exists "$(netns_of "$node")" || die "no namespace $(netns_of "$node"): run '$0 up'"
  # kubectl-lite works on every node (and on the client) with the server's
  # admin kubeconfig, over the lab network.
  KUBECONFIG=$(server_kubeconfig) PATH=$(dirname "$kubelite"):$PATH on_node "$node" "$@"
}

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
  exit 2
}

case ${1:-} in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  env) cmd_env ;;
  exec)
    shift
    cmd_exec "$@"
    ;;
  *) usage ;;
esac
