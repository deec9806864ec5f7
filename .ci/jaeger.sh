#!/usr/bin/env bash
# Build (once) and print the path of the Jaeger v2 binary the real-Jaeger tests run.
#
# `go install github.com/jaegertracing/jaeger/cmd/jaeger@VERSION` is refused: Jaeger's go.mod
# has a `replace` directive. So .ci/jaeger/ is a small module of our own that requires Jaeger
# at a pinned version, repeats that replace, and blank-imports cmd/jaeger (tools.go); its
# go.sum pins every dependency. `go build` of cmd/jaeger inside it gives the same binary the
# jaegertracing/jaeger image runs (without the UI's assets, which are not in the Go module).
#
# The binary is cached per Jaeger version, with a stamp of the module's files: a change to
# go.mod, go.sum or tools.go rebuilds it. Cold, the build downloads ~2 minutes of modules
# and compiles ~10 minutes on two quiet cores (2 GB RSS); with the module cache warm, ~20 s.
#
# Usage: .ci/jaeger.sh            -> prints the binary path (builds it only when missing)
# Env:   DNNPROF_CACHE   cache root (default ~/.cache/dnnprof);
#                        the binary is $DNNPROF_CACHE/jaeger/<version>/jaeger
set -euo pipefail

MODULE_DIR="$(cd "$(dirname "$0")/jaeger" && pwd)"
CACHE="${DNNPROF_CACHE:-$HOME/.cache/dnnprof}"
MODULE="github.com/jaegertracing/jaeger"
# The version go.mod requires (module tag v1.76.0 is the Jaeger v2.13.0 release).
VERSION="$(awk -v m="$MODULE" '$1 == m { print $2; exit } $1 == "require" && $2 == m { print $3; exit }' \
    "$MODULE_DIR/go.mod")"
DIR="$CACHE/jaeger/$VERSION"
BIN="$DIR/jaeger"
STAMP="$DIR/inputs.sha256"

log() { echo "jaeger.sh: $*" >&2; }

[ -n "$VERSION" ] || { log "no 'require $MODULE' in $MODULE_DIR/go.mod"; exit 1; }

inputs_hash() {
    (cd "$MODULE_DIR" && cat go.mod go.sum tools.go) | sha256sum | cut -d' ' -f1
}

is_current() {
    [ -x "$BIN" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$(inputs_hash)" ]
}

find_go() {
    if command -v go >/dev/null 2>&1; then
        command -v go
    elif [ -x /usr/local/go/bin/go ]; then
        echo /usr/local/go/bin/go
    else
        return 1
    fi
}

mkdir -p "$DIR"
if is_current; then
    echo "$BIN"
    exit 0
fi

GO="$(find_go)" || {
    log "no Go toolchain found (need 'go' >= the version in $MODULE_DIR/go.mod on PATH," \
        "or /usr/local/go/bin/go) to build Jaeger $VERSION"
    exit 1
}

# Two CI jobs (or a developer and CI) sharing a cache must not build into one place at once.
exec 9>"$DIR/.build.lock"
if command -v flock >/dev/null 2>&1; then
    flock 9
fi
if is_current; then  # built by whoever held the lock before us
    echo "$BIN"
    exit 0
fi

log "building Jaeger $VERSION (cmd/jaeger, v2) with $("$GO" version);" \
    "about 12 minutes the first time, 20 s with the Go module cache warm"
started=$SECONDS
# Build to a scratch name and rename, so an interrupted build never leaves a half-written
# binary where the tests look for one.
tmp="$(mktemp "$DIR/.jaeger.XXXXXX")"
trap 'rm -f "$tmp"' EXIT
(cd "$MODULE_DIR" && "$GO" build -trimpath -ldflags='-s -w' -o "$tmp" "$MODULE/cmd/jaeger") >&2
chmod +x "$tmp"
mv -f "$tmp" "$BIN"
inputs_hash >"$STAMP"
log "built $BIN in $((SECONDS - started)) s"
echo "$BIN"
