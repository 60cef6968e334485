#!/usr/bin/env bash
# Records one build of witnessnet's own release with `client run`: hashes the sources (materials),
# builds the static binaries reproducibly into dist/, hashes them (products), signs the link with
# the functionary's key and submits it for the release layout. A builder runs it with
# STEP=build, each rebuilder with STEP=rebuild; a link whose step needs several rebuilders
# waits in the network until enough of them recorded the same binaries.
#
#   CLIENT=client SERVER=http://127.0.0.1:7100 LAYOUT=sha256:... KEY=builder.key STEP=build release/build.sh
set -euo pipefail
cd "$(dirname "$0")/.."
: "${CLIENT:=go run ./cmd/client}" "${SERVER:?}" "${LAYOUT:?}" "${KEY:?}" "${STEP:=build}"
OUT=${OUT:-dist}
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false
mkdir -p "$OUT"
if [ "$STEP" = build ]; then
  exec $CLIENT run --step "$STEP" --key "$KEY" --server "$SERVER" --layout "$LAYOUT" \
    --materials go.mod --materials go.sum --materials cmd --materials internal \
    --products "$OUT" \
    -- sh -c "go build -trimpath -ldflags='-s -w' -o $OUT/witness ./cmd/witness && go build -trimpath -ldflags='-s -w' -o $OUT/client ./cmd/client"
fi
# A rebuilder builds on its own and co-signs the pending link only if it recorded exactly the
# binaries it built itself.
go build -trimpath -ldflags='-s -w' -o "$OUT/witness" ./cmd/witness
go build -trimpath -ldflags='-s -w' -o "$OUT/client" ./cmd/client
if ! $CLIENT cosign --server "$SERVER" --key "$KEY" --layout "$LAYOUT" --step "$STEP" --products "$OUT"; then
  # Nobody recorded these binaries yet: this rebuilder's link starts the group.
  exec $CLIENT run --step "$STEP" --key "$KEY" --server "$SERVER" --layout "$LAYOUT" --products "$OUT" -- true
fi
