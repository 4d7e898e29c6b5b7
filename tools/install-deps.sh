#!/bin/sh
# Install what ringlm needs to build and test on Debian 12 (run as root).
# CUDA is optional: when nvcc and cuBLAS are under /usr/local/cuda, meson enables the GPU backend.
set -eu
export DEBIAN_FRONTEND=noninteractive
pkgs="meson ninja-build gcc clang libclang-rt-14-dev pkg-config liburing-dev libsystemd-dev check systemd"
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    apt-get update
    # shellcheck disable=SC2086
    apt-get install -y --no-install-recommends $missing
fi
if [ -d /usr/local/cuda/bin ]; then
    case ":$PATH:" in *":/usr/local/cuda/bin:"*) ;; *) echo "hint: export PATH=/usr/local/cuda/bin:\$PATH to build the CUDA backend" ;; esac
fi
