#!/usr/bin/env bash
# Builds kubelite's offline images from Debian's busybox-static, without
# docker or a network: OUTDIR/busybox.tar (docker.io/library/busybox:latest)
# and OUTDIR/httpd.tar (docker.io/library/httpd:latest), OCI image layouts
# that `ctr images import` and the node agent's images folder accept.
# Builds are deterministic: the same busybox gives the same digests.
#
#   scripts/build-images.sh OUTDIR        e.g. /var/lib/kubelite/agent/images
set -euo pipefail

if [ $# -ne 1 ]; then
  echo "usage: $0 OUTDIR" >&2
  exit 2
fi
out=$1
busybox=${BUSYBOX:-/bin/busybox}
if [ ! -x "$busybox" ]; then
  echo "$busybox not found: install Debian's busybox-static (scripts/install-deps.sh)" >&2
  exit 1
fi

cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
go run ./nodeagent/images/cmd/build-images -busybox "$busybox" "$out"
