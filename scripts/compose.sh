#!/usr/bin/env bash
# The Docker Compose v2 command-line tool, pinned and built from the Go module proxy, to
# validate docker-compose.yml where no Docker engine (nor Docker's packages) is
# installed: `config` resolves, merges and checks the file without an engine.
#
#   scripts/compose.sh install     build (once per machine) the pinned binary
#   scripts/compose.sh path        print the binary's path; exit 1 if it is not built yet
#   scripts/compose.sh run ARGS..  run it, e.g. scripts/compose.sh run config --quiet
#
# Settings (environment):
#   COMPOSE_VERSION   Go module version of github.com/docker/compose/v2 (default below)
#   COMPOSE_BIN       use this docker-compose binary instead of the cached build
set -euo pipefail

COMPOSE_MODULE=github.com/docker/compose/v2
COMPOSE_VERSION=${COMPOSE_VERSION:-v2.40.3}
CACHE_DIR=${FRAUD_DETECTION_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/fraud-detection}
COMPOSE_BIN=${COMPOSE_BIN:-$CACHE_DIR/bin/docker-compose-$COMPOSE_VERSION}

log() { printf 'compose: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

cmd_install() {
    if [[ -x $COMPOSE_BIN ]]; then
        log "using cached $COMPOSE_BIN"
        return 0
    fi
    if ! command -v go >/dev/null && [[ -x /usr/local/go/bin/go ]]; then
        PATH=/usr/local/go/bin:$PATH
    fi
    command -v go >/dev/null ||
        die "go is required to build $COMPOSE_MODULE@$COMPOSE_VERSION (https://go.dev/dl)"
    # The upstream go.mod has exclude directives, so `go install module@version` refuses
    # it; build from a throwaway module that requires it and repeats the excludes, so
    # the dependencies resolve as upstream's own build does.
    build_dir=$(mktemp -d "${TMPDIR:-/tmp}/compose-build.XXXXXX")
    trap 'rm -rf "$build_dir"' EXIT
    local upstream_mod
    upstream_mod=$(cd "$build_dir" &&
        GOFLAGS=-mod=mod go mod download -json "$COMPOSE_MODULE@$COMPOSE_VERSION" |
        sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')
    [[ -f $upstream_mod ]] || die "could not download $COMPOSE_MODULE@$COMPOSE_VERSION"
    {
        printf 'module fraud-detection/compose-build\n\ngo %s\n\nrequire %s %s\n\n' \
            "$(sed -n 's/^go //p' "$upstream_mod")" "$COMPOSE_MODULE" "$COMPOSE_VERSION"
        sed -n '/^exclude (/,/^)/p; /^exclude [^(]/p; /^replace /p' "$upstream_mod"
    } >"$build_dir/go.mod"
    log "building $COMPOSE_MODULE/cmd@$COMPOSE_VERSION (a few minutes on 2 cores)..."
    local started=$SECONDS
    mkdir -p "$(dirname "$COMPOSE_BIN")"
    (cd "$build_dir" && GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath \
        -ldflags "-s -w -X $COMPOSE_MODULE/internal.Version=$COMPOSE_VERSION" \
        -o "$build_dir/docker-compose" "$COMPOSE_MODULE/cmd") || die "go build failed"
    "$build_dir/docker-compose" version >/dev/null || die "the built binary does not run"
    mv -f "$build_dir/docker-compose" "$COMPOSE_BIN.tmp.$$"
    mv -f "$COMPOSE_BIN.tmp.$$" "$COMPOSE_BIN"
    log "built $COMPOSE_BIN in $((SECONDS - started))s ($(du -h "$COMPOSE_BIN" | cut -f1))"
}

case ${1:-} in
    install) cmd_install ;;
    path)
        echo "$COMPOSE_BIN"
        [[ -x $COMPOSE_BIN ]] ||
            die "not built yet: run scripts/compose.sh install (make compose-cli)"
        ;;
    run)
        shift
        [[ -x $COMPOSE_BIN ]] || cmd_install
        exec "$COMPOSE_BIN" "$@"
        ;;
    *)
        echo "usage: $0 {install|path|run ARGS...}" >&2
        exit 2
        ;;
esac
