#!/bin/bash
# install_check.sh BUILD_ROOT SOURCE_ROOT: `meson install` into a scratch
# DESTDIR, then what a user of the installed files sees: the programs, the
# units, the header as in the tree, libringlm with its ABI's soname, and a
# program built with nothing but `pkg-config --cflags --libs ringlm` that runs
# against it.
set -u
build=$1 src=$2
fail() { echo "FAIL: $*"; exit 1; }
command -v pkg-config >/dev/null || { echo "SKIP: pkg-config missing"; exit 77; }
tmp=$(mktemp -d /tmp/rl-install-XXXXXX) || exit 1
trap 'rm -rf "$tmp"' EXIT
meson install -C "$build" --destdir "$tmp/root" --no-rebuild >"$tmp/install.log" 2>&1 ||
    { tail -20 "$tmp/install.log"; fail "meson install"; }
for f in ringlmd ringlm ringlm-bench ringlm-mkmodel ringlm-quantize; do
    [ -n "$(find "$tmp/root" -type f -name "$f" -perm -u+x)" ] || fail "$f not installed"
done
for f in ringlmd.service ringlmd.socket ringlmd.conf; do
    [ -n "$(find "$tmp/root" -name "$f")" ] || fail "$f not installed"
done
hdr=$(find "$tmp/root" -name ringlm.h | head -1)
[ -n "$hdr" ] && cmp -s "$hdr" "$src/client/ringlm.h" || fail "installed ringlm.h differs from client/ringlm.h"
so=$(find "$tmp/root" -name 'libringlm.so.1' | head -1)
[ -n "$so" ] || fail "libringlm.so.1 not installed"
readelf -d "$so" | grep -q 'SONAME.*\[libringlm\.so\.1\]' || fail "soname is not libringlm.so.1"
pc=$(find "$tmp/root" -name ringlm.pc | head -1)
[ -n "$pc" ] || fail "ringlm.pc not installed"
flags=$(PKG_CONFIG_PATH=$(dirname "$pc") PKG_CONFIG_SYSROOT_DIR=$tmp/root pkg-config --cflags --libs ringlm) ||
    fail "pkg-config ringlm"
cat >"$tmp/app.c" <<'EOF'
#include <errno.h>
#include <stdio.h>
#include <ringlm.h>

int main(void)
{
    ringlm_params p;
    ringlm_params_default(&p);
    if (p.max_tokens != 256 || p.logprobs != 0 || p.top_k != 40)
        return 2;
    ringlm_conn *c = NULL;
    if (ringlm_connect("/nonexistent-dir/ringlm.sock", NULL, &c) != -ENOENT || c)
        return 3;
    printf("connect: %s (%s)\n", ringlm_strerror(-ENOENT), ringlm_last_error());
    return 0;
}
EOF
cc -std=c11 -Wall -Wextra -Werror -o "$tmp/app" "$tmp/app.c" $flags || fail "a program built with pkg-config's flags"
LD_LIBRARY_PATH=$(dirname "$so") "$tmp/app" || fail "the program against the installed library (exit $?)"
echo "ok: installed files, soname, pkg-config"
