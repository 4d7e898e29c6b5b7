#!/bin/sh
# The main job: start ringlmd on a model and stream a generation through libringlm.
#
#   tools/demo.sh [MODEL.gguf] [PROMPT] [-- extra `ringlm generate` options]
#
# Defaults: the shipped models/stories260K.gguf (a real tiny Llama; see models/README.md) and
# the prompt "Once upon a time". When no model is given and none is shipped, a small
# random-weight model is made with ringlm-mkmodel (its text is noise, but every stage runs).
# BUILD=dir selects the build directory (default: build). The daemon listens on a private
# socket in a temporary directory and is stopped (SIGTERM) at the end.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$top/build}
model=${1:-$top/models/stories260K.gguf}
prompt=${2:-Once upon a time}
[ $# -ge 2 ] && shift 2 || shift $#
[ "${1:-}" = "--" ] && shift

tmp=$(mktemp -d)
daemon_pid=
cleanup() {
    if [ -n "$daemon_pid" ]; then
        kill -TERM "$daemon_pid" 2>/dev/null || true
        wait "$daemon_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

if [ ! -f "$model" ]; then
    echo "demo: no model at $model; making a random-weight 'tiny' model with ringlm-mkmodel" >&2
    "$build/tools/ringlm-mkmodel" --shape tiny --type f32 --out "$tmp/tiny.gguf"
    model=$tmp/tiny.gguf
fi

sock=$tmp/ringlm.sock
"$build/daemon/ringlmd" --model "$model" --socket "$sock" 2>"$tmp/ringlmd.log" &
daemon_pid=$!

# Wait until the daemon answers (it loads the model first).
i=0
until "$build/tools/ringlm" --socket "$sock" info >/dev/null 2>&1; do
    i=$((i + 1))
    if ! kill -0 "$daemon_pid" 2>/dev/null || [ $i -gt 300 ]; then
        echo "demo: ringlmd did not come up; its log:" >&2
        cat "$tmp/ringlmd.log" >&2
        exit 1
    fi
    sleep 0.1
done

echo "== ringlm info"
"$build/tools/ringlm" --socket "$sock" info
echo "== ringlm generate \"$prompt\""
"$build/tools/ringlm" --socket "$sock" generate -n 256 --timings "$@" "$prompt"
echo
