# gpu-env.sh - sourced by the tools/gpu-*.sh device scripts: strict mode, the
# staged dependencies' headers and libraries (../shared/device/stage puts them
# under /opt/deps on the GPU machine), and $OUT for results.
set -u -o pipefail
RL_GPU_ENV=1 # sourced (tools/gpu-lib.sh sources it when a script has not)
export C_INCLUDE_PATH=/opt/deps/usr/include${C_INCLUDE_PATH:+:$C_INCLUDE_PATH}
export LIBRARY_PATH=/opt/deps/usr/lib/x86_64-linux-gnu${LIBRARY_PATH:+:$LIBRARY_PATH}
OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT"
