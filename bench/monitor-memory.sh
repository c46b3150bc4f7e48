#!/usr/bin/env bash
# The container monitor's memory (issue 15 §6): berth's `berth-monitor` (installed beside
# `berth`), `berth __monitor` (what `berth` runs when copied alone) and podman's conmon
# (crun), each holding the same containers: `run -d … sleep 1000` and `run -dit … sh`.
#
#   bench/monitor-memory.sh              3 containers of each kind per monitor
#   N=5 bench/monitor-memory.sh          5 of each
#   BERTH_BIN=…/berth bench/monitor-memory.sh
#                                        another build (berth-monitor and berth-runtime are
#                                        looked for next to it)
#
# Per monitor, from /proc/PID/status and /proc/PID/smaps_rollup: VmRSS and its private
# (dirty) part. The private part is what each further container costs; the rest are the
# binary's and libc's pages, shared by every monitor. Run as root (podman with cgroupfs,
# the ulimits this VM's hard limits allow); results also go to
# bench/results/monitor-memory-<date>.md (gitignored).
set -euo pipefail

N=${N:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
if [ -z "${BERTH_BIN:-}" ]; then
    echo "building berth, berth-monitor and berth-runtime (release)" >&2
    cargo build --release -q -p berth-cli -p berth-runtime-cli
    BERTH_BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/berth
fi
BIN_DIR=$(dirname "$BERTH_BIN")
for b in berth-monitor berth-runtime; do
    [ -x "$BIN_DIR/$b" ] || { echo "error: no $b next to $BERTH_BIN" >&2; exit 1; }
done
for t in podman conmon crun jq busybox; do
    command -v "$t" >/dev/null || { echo "error: $t is not installed (scripts/test installs it)" >&2; exit 1; }
done

WORK=$(mktemp -d /var/tmp/berth-monitor-memory.XXXXXX)
chmod 755 "$WORK"
PODMAN=(podman --root "$WORK/podman/storage" --runroot "$WORK/podman/run" --tmpdir "$WORK/podman/tmp"
        --cgroup-manager cgroupfs --events-backend none --storage-driver overlay --runtime crun)
ULIMITS=(--ulimit nofile=1024:4096 --ulimit nproc=4096:4096)
cleanup() {
    for b in "$BERTH_BIN" "$WORK/alone/berth"; do
        [ -x "$b" ] && XDG_DATA_HOME=$WORK "$b" rm -f $(XDG_DATA_HOME=$WORK "$b" ps -aq 2>/dev/null) >/dev/null 2>&1 || true
    done
    "${PODMAN[@]}" rm -af -t 0 >/dev/null 2>&1 || true
    "${PODMAN[@]}" system reset -f >/dev/null 2>&1 || true
    grep -o " $WORK[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

mkdir -p "$WORK/rootfs/bin" "$WORK/alone"
cp "$(command -v busybox)" "$WORK/rootfs/bin/busybox"
for a in sh sleep; do ln -s busybox "$WORK/rootfs/bin/$a"; done
tar -C "$WORK/rootfs" -cf "$WORK/rootfs.tar" .
# berth alone: no berth-monitor beside it (copies: the same bytes, another directory)
cp "$BERTH_BIN" "$BIN_DIR/berth-runtime" "$WORK/alone/"
XDG_DATA_HOME=$WORK "$BERTH_BIN" import "$WORK/rootfs.tar" localhost/mem:1 >/dev/null
"${PODMAN[@]}" import -q "$WORK/rootfs.tar" localhost/mem:1 >/dev/null

# "RSS PRIVATE" of process $1, KiB
mem() {
    local rss priv
    rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$1/status")
    priv=$(awk '/^Private_Dirty:/ {print $2}' "/proc/$1/smaps_rollup")
    echo "$rss $priv"
}
berth_monitor() { # berth-binary mode → "RSS PRIVATE"
    local cmd=(sleep 1000) id
    [ "$2" = -dit ] && cmd=(sh)
    id=$(XDG_DATA_HOME=$WORK "$1" run "$2" --network none localhost/mem:1 "${cmd[@]}")
    sleep 0.3
    mem "$(jq .monitor_pid "$WORK/berth/containers/$id/container.json")"
}
conmon_of() { # mode → "RSS PRIVATE"
    local cmd=(sleep 1000) id
    [ "$1" = -dit ] && cmd=(sh)
    id=$("${PODMAN[@]}" run "$1" "${ULIMITS[@]}" --network none localhost/mem:1 "${cmd[@]}" 2>/dev/null)
    sleep 0.3
    mem "$("${PODMAN[@]}" inspect -f '{{.State.ConmonPid}}' "$id")"
}

declare -A RES
for mode in -d -dit; do
    for _ in $(seq "$N"); do
        RES["berth-monitor $mode"]+="$(berth_monitor "$BERTH_BIN" "$mode");"
        RES["berth __monitor $mode"]+="$(berth_monitor "$WORK/alone/berth" "$mode");"
        RES["conmon $mode"]+="$(conmon_of "$mode");"
    done
done

OUT=$ROOT/bench/results/monitor-memory-$(date +%F).md
mkdir -p "$(dirname "$OUT")"
{
    echo "# container monitor memory — $(date -u +%FT%TZ)"
    echo
    echo "- $N containers per row; berth $BERTH_BIN; $(podman --version), $(conmon --version | head -1)"
    echo
    echo "| monitor | mode | VmRSS KiB (min–max) | private dirty KiB (min–max) |"
    echo "| --- | --- | ---: | ---: |"
    for m in "berth-monitor" "conmon" "berth __monitor"; do
        for mode in -d -dit; do
            echo "${RES["$m $mode"]}" | tr ';' '\n' | awk -v m="$m" -v mode="$mode" 'NF == 2 {
                if (n == 0 || $1 < r0) r0 = $1; if ($1 > r1) r1 = $1
                if (n == 0 || $2 < p0) p0 = $2; if ($2 > p1) p1 = $2; n++ }
                END { printf "| %s | %s | %d–%d | %d–%d |\n", m, mode, r0, r1, p0, p1 }'
        done
    done
} | tee "$OUT"
