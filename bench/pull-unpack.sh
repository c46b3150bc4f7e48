#!/usr/bin/env bash
# Cold pull + unpack: `berth pull --unpack` (each layer unpacked into its chain-ID overlay
# snapshot as soon as its blob is stored, in parallel, while the others download) against
# `berth pull` then `berth image unpack` (berth-seq: the same work without the overlap),
# `skopeo copy docker://… oci:…` + `umoci unpack` and `podman pull`
# (--tls-verify=false, a fresh --root, overlay), all from one local `berth registry serve`,
# interleaved (the order reverses every round: ABBA). Run by hand as root; never in CI.
#
#   bench/pull-unpack.sh             ROUNDS=3
#   ROUNDS=1 bench/pull-unpack.sh    a quick smoke run
#
# Images (tar layers of random bytes through `gzip -1`: incompressible):
#   big:  BIG_LAYERS x BIG_MIB MiB (default 4 x 64)     many: SMALL_LAYERS x SMALL_KIB KiB (200 x 16)
# Also measures `gzip -d` of one big layer on this machine (the median of 3): the
# single-core limit of the unpack. Results: medians, peer/berth ratios (higher = berth faster), written to
# bench/results/pull-unpack-<date>.md (gitignored).
set -euo pipefail

ROUNDS=${ROUNDS:-3}
BIG_LAYERS=${BIG_LAYERS:-4}
BIG_MIB=${BIG_MIB:-64}
SMALL_LAYERS=${SMALL_LAYERS:-200}
SMALL_KIB=${SMALL_KIB:-16}
LOG_LEVEL=${LOG_LEVEL:-warn}

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
for tool in podman skopeo umoci gzip tar sha256sum jq curl; do
    command -v "$tool" >/dev/null 2>&1 || {
        echo "error: $tool is not installed" >&2
        exit 1
    }
done
# shellcheck source=bench/lib.sh
source bench/lib.sh
bench_setup berth-pu # short: podman refuses a runroot path over 50 characters
berth_release_bin

log "making the images: big $BIG_LAYERS x $BIG_MIB MiB, many $SMALL_LAYERS x $SMALL_KIB KiB"
MKIMAGE_TAR=1 mkimage "$WORK/big" big "$BIG_LAYERS" "$((BIG_MIB << 20))"
MKIMAGE_TAR=1 mkimage "$WORK/many" many "$SMALL_LAYERS" "$((SMALL_KIB << 10))"

start_server berth 0
for img in big many; do
    skopeo --insecure-policy copy -q --dest-tls-verify=false "oci:$WORK/$img:$img" "docker://$HOSTPORT/bench/$img:latest"
done

# the limit: gzip -d of one big layer (page cache warm), MiB/s of uncompressed output
one=$(jq -r '.layers[0].digest' "$WORK/big/blobs/sha256/$(cat "$WORK/big/manifest.digest")" | cut -d: -f2)
gzip -d -c "$WORK/big/blobs/sha256/$one" >/dev/null
g=""
for _ in 1 2 3; do
    t=$(now)
    gzip -d -c "$WORK/big/blobs/sha256/$one" >/dev/null
    g+="$(elapsed "$t") "
done
GZIP_MIBPS=$(mibps "$((BIG_MIB << 20))" "$(echo "$g" | median)")

declare -A RES
run_one() { # contender image round
    local c=$1 img=$2 r=$3 s=$WORK/$1-$2-$3 t ref=$HOSTPORT/bench/$2:latest
    local pa=(--root "$s/root" --runroot "$s/run" --tmpdir "$s/libpod" --storage-driver overlay --events-backend none)
    mkdir -p "$s"
    sync
    t=$(now)
    case $c in
    berth) "$BERTH" pull -q --unpack --plain-http --data "$s/data" "$ref" >/dev/null ;;
    berth-seq)
        "$BERTH" pull -q --plain-http --data "$s/data" "$ref" >/dev/null
        "$BERTH" image unpack -q --data "$s/data" "$ref" >/dev/null
        ;;
    podman) podman "${pa[@]}" pull -q --tls-verify=false "$ref" >/dev/null ;;
    skopeo)
        skopeo --insecure-policy copy -q --src-tls-verify=false "docker://$ref" "oci:$s/layout:x"
        umoci unpack --image "$s/layout:x" "$s/bundle" >/dev/null
        ;;
    esac
    RES["$img|$c"]+="$(elapsed "$t") "
    if [ "$c" = podman ]; then podman "${pa[@]}" system reset -f >/dev/null 2>&1 || true; fi
    rm -rf "$s"
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
n=0
for ((round = 0; round < ROUNDS; round++)); do
    for img in big many; do
        # ABBA over the four: berth berth-seq podman skopeo, skopeo podman berth-seq berth, …
        if ((n % 2 == 0)); then order="berth berth-seq podman skopeo"; else order="skopeo podman berth-seq berth"; fi
        n=$((n + 1))
        for c in $order; do
            log "round $round: $img: $c"
            run_one "$c" "$img" "$round"
        done
    done
done
stop_server

mkdir -p bench/results
out=bench/results/pull-unpack-$(date +%Y%m%d-%H%M%S).md
{
    echo "- $(date -u +%Y-%m-%dT%H:%MZ), load average before/after: $LOAD_BEFORE / $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "- ROUNDS=$ROUNDS interleaved; big $BIG_LAYERS x $BIG_MIB MiB, many $SMALL_LAYERS x $SMALL_KIB KiB; machine: $(nproc) CPUs, shared; gzip -d: $GZIP_MIBPS MiB/s"
    echo
    echo "| image | berth s | berth-seq s | podman s | skopeo+umoci s | berth-seq/berth | podman/berth | (skopeo+umoci)/berth | berth MiB/s |"
    echo "|---|---|---|---|---|---|---|---|---|"
    for img in big many; do
        if [ $img = big ]; then bytes=$((BIG_LAYERS * BIG_MIB << 20)); else bytes=$((SMALL_LAYERS * SMALL_KIB << 10)); fi
        b=$(echo "${RES["$img|berth"]}" | median)
        p=$(echo "${RES["$img|podman"]}" | median)
        k=$(echo "${RES["$img|skopeo"]}" | median)
        q=$(echo "${RES["$img|berth-seq"]}" | median)
        ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a/b}'; }
        echo "| $img | $b | $q | $p | $k | $(ratio "$q" "$b") | $(ratio "$p" "$b") | $(ratio "$k" "$b") | $(mibps "$bytes" "$b") |"
    done
    echo
    for key in "${!RES[@]}"; do echo "- $key: ${RES[$key]}"; done | sort
} | tee "$out"
