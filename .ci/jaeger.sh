#!/usr/bin/env bash
# Build (once) and print the path of a Jaeger all-in-one binary for the real-Jaeger tests.
#
# Jaeger is taken from the Go module proxy, not from a container registry, so CI needs only a
# Go toolchain. v1.48.0 is the newest release `go install pkg@version` accepts: from v1.49 on the
# module's go.mod carries `replace` directives, which `go install` refuses. The binary serves the
# collector and the query HTTP API but not the UI (its assets are not in the module).
#
# Usage: .ci/jaeger.sh            -> prints the binary path (builds it only when missing)
# Env:   DNNPROF_CACHE   cache root (default ~/.cache/dnnprof); the binary is $DNNPROF_CACHE/gobin/all-in-one
#        JAEGER_VERSION  module version (default v1.48.0; must be <= v1.48.0)
set -euo pipefail

JAEGER_VERSION="${JAEGER_VERSION:-v1.48.0}"
CACHE="${DNNPROF_CACHE:-$HOME/.cache/dnnprof}"
GOBIN_DIR="$CACHE/gobin"
BIN="$GOBIN_DIR/all-in-one"
MODULE="github.com/jaegertracing/jaeger"

log() { echo "jaeger.sh: $*" >&2; }

find_go() {
    if command -v go >/dev/null 2>&1; then
        command -v go
    elif [ -x /usr/local/go/bin/go ]; then
        echo /usr/local/go/bin/go
    else
        return 1
    fi
}

# The version the cached binary was built from, read from its embedded build info.
built_version() {
    local go_bin="$1"
    "$go_bin" version -m "$BIN" 2>/dev/null | awk -v m="$MODULE" '$1 == "mod" && $2 == m { print $3 }'
}

is_current() {
    [ -x "$BIN" ] || return 1
    local go_bin
    # Without a Go toolchain the build info cannot be read; an existing binary is still usable.
    go_bin="$(find_go)" || return 0
    local have
    have="$(built_version "$go_bin")"
    # An empty answer means a binary not built by `go install` (copied in by hand): keep it.
    [ -z "$have" ] || [ "$have" = "$JAEGER_VERSION" ]
}

mkdir -p "$GOBIN_DIR"
if is_current; then
    echo "$BIN"
    exit 0
fi

GO="$(find_go)" || {
    log "no Go toolchain found (need 'go' on PATH or /usr/local/go/bin/go) to build Jaeger $JAEGER_VERSION"
    exit 1
}

# Two CI jobs (or a developer and CI) sharing a cache must not build into the same GOBIN at once.
exec 9>"$GOBIN_DIR/.build.lock"
if command -v flock >/dev/null 2>&1; then
    flock 9
fi
if is_current; then  # built by whoever held the lock before us
    echo "$BIN"
    exit 0
fi

log "building Jaeger all-in-one $JAEGER_VERSION with $("$GO" version) (takes several minutes the first time)"
# Build into a scratch GOBIN and move the result into place, so an interrupted build never
# leaves a half-written binary at the path the tests look for.
tmp_gobin="$(mktemp -d "$GOBIN_DIR/.tmp.XXXXXX")"
trap 'rm -rf "$tmp_gobin"' EXIT
GOBIN="$tmp_gobin" GOFLAGS="${GOFLAGS:-} -trimpath" \
    "$GO" install "$MODULE/cmd/all-in-one@$JAEGER_VERSION" >&2
mv -f "$tmp_gobin/all-in-one" "$BIN"
log "installed $BIN"
echo "$BIN"
