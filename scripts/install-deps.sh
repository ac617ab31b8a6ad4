#!/usr/bin/env bash
# Installs the Debian packages kubelite needs to build, run and test, when
# they are missing. Safe to run again.
set -euo pipefail

packages=(
  etcd-server
  containerd runc
  containernetworking-plugins
  iptables nftables iproute2
  busybox-static
  dnsperf shellcheck
  docker-registry
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
