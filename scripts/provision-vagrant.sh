#!/usr/bin/env bash
# Provisions one machine of the Vagrant lab (see the Vagrantfile and
# docs/lab.md): installs what kubelite needs with the same script as
# `make up`, builds kubelite from /vagrant, and runs it as a systemd unit —
# `kubelite server` on the server, `kubelite agent` on the others. Safe to
# run again (`vagrant provision`).
#
# Settings, from the Vagrantfile:
#   KUBELITE_ROLE       server or agent
#   NODE_NAME           the node's name (also its hostname)
#   LAB_NETWORK         the private network, e.g. 192.168.56.0/24: the node's
#                       IP is the address its NIC has there, never the NAT one
#   SERVER_IP           the server's address on that network
#   LOADBALANCER_POOL   addresses for LoadBalancer Services (server only)
set -euo pipefail

role=${KUBELITE_ROLE:?KUBELITE_ROLE must be server or agent}
node_name=${NODE_NAME:?}
lab_network=${LAB_NETWORK:?}
server_ip=${SERVER_IP:?}
loadbalancer_pool=${LOADBALANCER_POOL:-}

readonly repo=/vagrant
readonly bin_dir=/opt/kubelite/bin
readonly data_dir=/var/lib/kubelite
readonly images_dir=/var/lib/kubelite/images
# Shared with the other machines (and the host) through /vagrant: the node
# token the agents join with, and an admin kubeconfig for the host.
readonly shared_dir=$repo/.vagrant/kubelite
readonly token_wait_seconds=1800

log() { echo "provision $node_name: $*"; }
die() {
  echo "provision $node_name: $*" >&2
  exit 1
}

# node_ip: the address of the NIC on the private network. VirtualBox's NAT
# NIC has 10.0.2.15 on every VM; a node announcing it would be unreachable.
node_ip() {
  local ip
  ip=$(ip -4 -o addr show to "$lab_network" | awk 'NR == 1 { split($4, a, "/"); print a[1] }')
  [ -n "$ip" ] || die "no network interface has an address in $lab_network: check the private_network in the Vagrantfile"
  echo "$ip"
}

# install_kubelite: the binary the host built into the shared folder
# (`make build` on a Linux host, or `GOOS=linux GOARCH=amd64 go build -o
# bin/kubelite .` elsewhere): the machines need no Go toolchain and download
# nothing. The offline images are built here from Debian's busybox-static.
install_kubelite() {
  local built=$repo/bin/kubelite
  [ -f "$built" ] || die "$built not found: run 'make build' on the host before 'vagrant up'"
  [ "$(head -c 4 "$built" | od -An -c | tr -d ' ')" = '177ELF' ] ||
    die "$built is not a Linux binary: on this host build it with GOOS=linux GOARCH=amd64 go build -o bin/kubelite ."
  log "installing kubelite into $bin_dir"
  mkdir -p "$bin_dir"
  install -m 0755 "$built" "$bin_dir/kubelite"
  ln -sf "$bin_dir/kubelite" /usr/local/bin/kubelite
  ln -sf "$bin_dir/kubelite" /usr/local/bin/kubectl-lite
  "$bin_dir/kubelite" images build "$images_dir"
}

# install_unit NAME EXEC_START...: a systemd unit that runs kubelite. Only
# kubelite itself is stopped with the unit (KillMode=process): containers
# keep running and the next start adopts them, as k3s does.
install_unit() {
  local name=$1
  shift
  cat >"/etc/systemd/system/$name.service" <<UNIT
[Unit]
Description=kubelite $role ($node_name), provisioned by scripts/provision-vagrant.sh
Wants=network-online.target
After=network-online.target

[Service]
ExecStart=$*
Restart=always
RestartSec=5
KillMode=process
Delegate=yes
LimitNOFILE=1048576
TimeoutStopSec=60

[Install]
WantedBy=multi-user.target
UNIT
  systemctl daemon-reload
  systemctl enable "$name.service"
  systemctl restart "$name.service"
}

provision_server() {
  local ip=$1
  # A token left by an earlier server would let the agents join nothing.
  rm -f "$shared_dir/node-token"
  install_unit kubelite-server "$bin_dir/kubelite" server \
    --data-dir "$data_dir" \
    --bind-address 0.0.0.0 --advertise-address "$ip" \
    --node-name "$node_name" --node-ip "$ip" \
    --images-dir "$images_dir" \
    --loadbalancer-pool "$loadbalancer_pool"

  log "waiting for the API server"
  local deadline=$((SECONDS + 300))
  until [ -f "$data_dir/node-token" ] && kubectl-lite --kubeconfig "$data_dir/admin.kubeconfig" get namespaces >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || die "the server did not answer in 300 s: journalctl -u kubelite-server"
    sleep 2
  done
  mkdir -p "$shared_dir"
  install -m 600 "$data_dir/node-token" "$shared_dir/node-token"
  # The admin kubeconfig, pointed at the private network, for the host.
  sed "s#^\(\s*server:\s*\).*#\1https://$ip:6443#" "$data_dir/admin.kubeconfig" >"$shared_dir/admin.kubeconfig"
  chmod 600 "$shared_dir/admin.kubeconfig"
  log "published the node token and an admin kubeconfig in $shared_dir"
}

provision_agent() {
  local ip=$1
  log "waiting for the server's node token in $shared_dir (provision the server first)"
  local deadline=$((SECONDS + token_wait_seconds))
  until [ -s "$shared_dir/node-token" ]; do
    [ $SECONDS -lt $deadline ] || die "no node token in $shared_dir after $token_wait_seconds s: is the server provisioned?"
    sleep 5
  done
  install -d -m 700 "$data_dir"
  install -m 600 "$shared_dir/node-token" "$data_dir/node-token"
  install_unit kubelite-agent "$bin_dir/kubelite" agent \
    --server "https://$server_ip:6443" \
    --token-file "$data_dir/node-token" \
    --node-name "$node_name" --node-ip "$ip" \
    --data-dir "$data_dir/agent" \
    --images-dir "$images_dir"
}

main() {
  [ "$(id -u)" -eq 0 ] || die "must run as root (Vagrant's shell provisioner does)"
  local ip
  ip=$(node_ip)
  log "role $role, node IP $ip (from the NIC on $lab_network)"

  "$repo/scripts/install-deps.sh"
  install_kubelite

  case $role in
    server) provision_server "$ip" ;;
    agent) provision_agent "$ip" ;;
    *) die "KUBELITE_ROLE must be server or agent, not $role" ;;
  esac
  log "done: 'vagrant ssh $node_name -c \"sudo kubectl-lite get nodes\"' on the server"
}

main
