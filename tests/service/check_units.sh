#!/bin/sh
# check_units.sh MODE UNITDIR [BINARY]
#   security: systemd-analyze security --offline exposure of ringlmd.service <= 2.0
#   verify:   systemd-analyze verify of ringlmd.service + ringlmd.socket is clean,
#             with ExecStart pointed at BINARY (the built ringlmd) in a temporary copy.
# Exit 77 (meson: skipped) when systemd-analyze is missing.
set -u
mode=$1
unitdir=$2
bin=${3:-}
threshold=2.0

if ! command -v systemd-analyze >/dev/null 2>&1; then
    echo "SKIP: systemd-analyze not installed"
    exit 77
fi
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
cp "$unitdir/ringlmd.service" "$unitdir/ringlmd.socket" "$tmp/" || exit 1

case "$mode" in
security)
    out=$(systemd-analyze security --offline=true --threshold=100 "$tmp/ringlmd.service" 2>&1)
    rc=$?
    echo "$out" | grep -E '^✗|Overall'
    score=$(echo "$out" | sed -n 's/.*Overall exposure level for ringlmd.service: \([0-9.]*\).*/\1/p')
    if [ $rc -ne 0 ] || [ -z "$score" ]; then
        echo "FAIL: systemd-analyze security failed (rc=$rc)"; echo "$out"; exit 1
    fi
    if awk -v s="$score" -v t="$threshold" 'BEGIN { exit !(s <= t) }'; then
        echo "PASS: exposure $score <= $threshold"; exit 0
    fi
    echo "FAIL: exposure $score > $threshold"; exit 1
    ;;
verify)
    [ -x "$bin" ] || { echo "FAIL: ringlmd binary '$bin' missing"; exit 1; }
    sed -i "s|^ExecStart=[^ ]*|ExecStart=$bin|" "$tmp/ringlmd.service"
    grep '^ExecStart=' "$tmp/ringlmd.service"
    out=$(cd "$tmp" && SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --man=no \
          ./ringlmd.socket ./ringlmd.service 2>&1)
    rc=$?
    if [ $rc -ne 0 ] || [ -n "$out" ]; then
        echo "FAIL: systemd-analyze verify (rc=$rc):"; echo "$out"; exit 1
    fi
    echo "PASS: systemd-analyze verify clean"; exit 0
    ;;
*)
    echo "usage: $0 security|verify UNITDIR [BINARY]"; exit 2 ;;
esac
