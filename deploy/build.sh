#!/usr/bin/env bash
# The one build step before `docker compose -f deploy/docker-compose.yml up`:
#   1. builds static binaries (CGO_ENABLED=0) into deploy/bin/,
#   2. builds the FROM scratch image witnessnet:dev from them (nothing is pulled),
#   3. writes the network's configs and keys into deploy/network/ unless they already exist:
#      `witness testnet` makes every member's keys and the policy, and this script rewrites the
#      addresses to the compose service names (raft nodeI:7000, HTTP http://nodeI:8080) and the
#      paths to where the containers mount them.
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

# yaml_get KEY FILE: a top-level scalar of a witness.yaml as `witness testnet` writes it.
yaml_get() { sed -n -E "s/^$1:[[:space:]]*\"?([^\"#]*[^\"#[:space:]])\"?[[:space:]]*(#.*)?$/\1/p" "$2" | head -n1; }

write_network() {
  local tmp i src dir name origin logkey witkey interval
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' RETURN
  "$here/bin/witness" testnet --nodes "$nodes" --dir "$tmp/testnet" >/dev/null
  mkdir -p "$net"
  cp "$tmp/testnet/policy.txt" "$net/policy.txt.tmp"
  for i in $(seq 1 "$nodes"); do
    src="$tmp/testnet/node$i/witness.yaml"
    name=$(yaml_get name "$src")
    origin=$(yaml_get origin "$src")
    interval=$(yaml_get checkpoint_interval "$src")
    logkey=$(yaml_get log_key "$src")
    witkey=$(yaml_get witness_key "$src")
    case $logkey in /*) ;; *) logkey="$tmp/testnet/node$i/$logkey" ;; esac
    case $witkey in /*) ;; *) witkey="$tmp/testnet/node$i/$witkey" ;; esac
    dir="$net/node$i"
    mkdir -p "$dir"
    chmod 700 "$dir"
    install -m 600 "$logkey" "$dir/log.key"
    install -m 600 "$witkey" "$dir/witness.key"
    {
      echo "# $name: one member organization of the compose network (deploy/build.sh)."
      echo "name: $name"
      echo "origin: $origin"
      echo "data_dir: /data"
      echo "http_addr: 0.0.0.0:8080"
      echo "raft_addr: node$i:7000"
      echo "log_key: /etc/witness/log.key"
      echo "witness_key: /etc/witness/witness.key"
      echo "policy: /etc/witnessnet/policy.txt"
      echo "checkpoint_interval: ${interval:-200ms}"
      echo "peers:"
      local j pname
      for j in $(seq 1 "$nodes"); do
        pname=$(yaml_get name "$tmp/testnet/node$j/witness.yaml")
        echo "  - name: $pname"
        echo "    raft_addr: node$j:7000"
        echo "    url: http://node$j:8080"
      done
      if [ -n "${WITNESS_EXTRA_CONFIG:-}" ]; then printf '%s\n' "$WITNESS_EXTRA_CONFIG"; fi
    } >"$dir/witness.yaml"
    # The policy names each witness with its base URL: the compose service's.
    sed -i -E "s#^(witness[[:space:]]+$name[[:space:]]+[^[:space:]]+)([[:space:]].*)?\$#\\1 http://node$i:8080#" "$net/policy.txt.tmp"
  done
  mv "$net/policy.txt.tmp" "$net/policy.txt"
  echo "wrote $net (policy.txt, node1..node$nodes)"
}

mkdir -p "$here/bin"
build witness
if [ -z "${WITNESS_SKIP_IMAGE:-}" ]; then
  if [ -d "$root/cmd/client" ]; then build client; fi
  docker build -q -t "$image" "$here" >/dev/null
  echo "built image $image"
fi
if [ ! -f "$net/policy.txt" ]; then
  write_network
fi
