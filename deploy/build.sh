#!/usr/bin/env bash
# The one build step before `docker compose -f deploy/docker-compose.yml up`:
#   1. builds static binaries (CGO_ENABLED=0) into deploy/bin/,
#   2. builds the FROM scratch image witnessnet:dev from them (nothing is pulled),
#   3. writes the network's configs and keys into deploy/network/ unless they already exist, with
#      `witness testnet --hosts node1,...`: the compose service names as addresses (HTTP
#      http://nodeI:8080, raft nodeI:8180) and the paths where the containers mount them (/testnet).
#
# Environment (all optional):
#   WITNESS_IMAGE         image tag (witnessnet:dev)
#   WITNESS_NETWORK_DIR   configs and keys (deploy/network)
#   WITNESS_NODES         members (4; the compose file names node1..node4)
#   WITNESS_SKIP_IMAGE=1  skip steps 1-2 except building bin/witness (only write the network)
#   WITNESS_EXTRA_CONFIG  YAML lines appended to every witness.yaml (the fault suite sets small
#                         raft trailing-log and snapshot settings this way)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
image=${WITNESS_IMAGE:-witnessnet:dev}
net=${WITNESS_NETWORK_DIR:-$here/network}
nodes=${WITNESS_NODES:-4}
export GOFLAGS=${GOFLAGS:--buildvcs=false}

build() { # build NAME: static binary of ./cmd/NAME into deploy/bin
  (cd "$root" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$here/bin/$1" "./cmd/$1")
}

write_network() {
  local hosts i
  hosts=$(seq -f 'node%g' -s, 1 "$nodes")
  "$here/bin/witness" testnet --nodes "$nodes" --dir "$net" --hosts "$hosts" --base-port 8080 >/dev/null
  if [ -n "${WITNESS_EXTRA_CONFIG:-}" ]; then
    for i in $(seq 1 "$nodes"); do printf '%s\n' "$WITNESS_EXTRA_CONFIG" >>"$net/node$i/witness.yaml"; done
  fi
  echo "wrote $net (policy.txt, node1..node$nodes)"
}

mkdir -p "$here/bin"
build witness
if [ -z "${WITNESS_SKIP_IMAGE:-}" ]; then
  if [ -d "$root/cmd/client" ]; then build client; fi
  if ! out=$(docker build -q -t "$image" "$here" 2>&1); then
    echo "$out" >&2
    exit 1
  fi
  echo "built image $image"
fi
if [ ! -f "$net/policy.txt" ]; then
  write_network
fi
