#!/usr/bin/env bash
# Which contenders unpack while they download? A local `berth registry serve` behind a
# proxy (bench/tools/stall-proxy.py) that holds the GET of the LAST layer's blob for STALL
# seconds; half-way through the stall, each contender's storage is inspected: layers already
# unpacked (podman: containers-storage overlay layers with content; berth: snapshots, active
# or committed, holding their layer's file). skopeo+umoci is not observed: `skopeo copy … oci:` writes blobs into a layout
# and never a file system, and `umoci unpack` reads the finished layout afterwards, so
# nothing can unpack during that download by construction.
# Run by hand as root; never in CI.
#
#   bench/overlap.sh     (LAYERS=4 x MIB=8 MiB layers, STALL=4 seconds)
set -euo pipefail

LAYERS=${LAYERS:-4}
MIB=${MIB:-8}
STALL=${STALL:-4}
LOG_LEVEL=${LOG_LEVEL:-warn}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
# shellcheck source=bench/lib.sh
source bench/lib.sh
bench_setup berth-ov
berth_release_bin
PROXY_PID=""
trap '[ -n "$PROXY_PID" ] && kill "$PROXY_PID" 2>/dev/null; bench_cleanup' EXIT

MKIMAGE_TAR=1 mkimage "$WORK/img" img "$LAYERS" "$((MIB << 20))"
start_server berth 0
skopeo --insecure-policy copy -q --dest-tls-verify=false "oci:$WORK/img:img" "docker://$HOSTPORT/bench/img:latest"
last=$(jq -r '.layers[-1].digest' "$WORK/img/blobs/sha256/$(cat "$WORK/img/manifest.digest")" | cut -d: -f2)
pport=$(free_port)
python3 bench/tools/stall-proxy.py "http://$HOSTPORT" "$last" "$STALL" "$pport" 2>"$WORK/proxy.log" &
PROXY_PID=$!
wait_ready "http://127.0.0.1:$pport" "$PROXY_PID"
ref=127.0.0.1:$pport/bench/img:latest
half=$(awk -v s="$STALL" 'BEGIN{print s/2}')

observe() { # contender: runs it in the background, reports what is unpacked mid-stall
    local c=$1 s=$WORK/$1 pid n
    mkdir -p "$s"
    local pa=(--root "$s/root" --runroot "$s/run" --tmpdir "$s/libpod" --storage-driver overlay --events-backend none)
    case $c in
    berth) "$BERTH" pull -q --unpack --plain-http --data "$s/data" "$ref" >/dev/null & ;;
    podman) podman "${pa[@]}" pull -q --tls-verify=false "$ref" >/dev/null & ;;
    esac
    pid=$!
    # wait for the stall to start, then half of it
    for _ in $(seq 1 200); do grep -q stalling "$WORK/proxy.log" 2>/dev/null && break; sleep 0.05; done
    sleep "$half"
    case $c in
    berth) # layers are committed in batches: count the snapshots holding an unpacked file
        n=$(find "$s/data/snapshots/snapshots" -mindepth 3 -maxdepth 3 -path '*/fs/file*' 2>/dev/null | wc -l) ;;
    podman) n=$(find "$s/root/overlay" -mindepth 3 -maxdepth 3 -path '*/diff/file*' 2>/dev/null | wc -l) ;;
    esac
    echo "$c: $n of $((LAYERS - 1)) downloaded layers unpacked while the last one was still downloading"
    wait "$pid"
    if [ "$c" = podman ]; then podman "${pa[@]}" system reset -f >/dev/null 2>&1 || true; fi
    : >"$WORK/proxy.log"
}
for c in berth podman; do observe "$c"; done
