#!/usr/bin/env bash
# Archive benchmark: `berth load` + `berth save` of a docker-archive against `podman load` +
# `podman save` and `skopeo copy` doing the same job, side by side in one run, interleaved
# (the order of the three contenders reverses from one round to the next: berth podman
# skopeo, skopeo podman berth, …). Run by hand; never in CI.
#
#   bench/archive.sh                ROUNDS=3
#   ROUNDS=1 bench/archive.sh       a quick smoke run
#
# The input is what `docker save` writes: LAYERS x LAYER_MIB MiB uncompressed layers of
# random bytes (a tar each), manifest.json, config.
#   load: archive -> berth's store (a fresh --data) | podman's store (a fresh --root,
#         overlay) | an OCI layout (skopeo has no store: `skopeo copy docker-archive: oci:`)
#   save: that store -> a docker-archive (`berth save`, `podman save`,
#         `skopeo copy oci: docker-archive:`)
# Results: medians, ratios peer time / berth time (higher = berth faster), also written to
# bench/results/archive-<date>.md (gitignored).
set -euo pipefail

ROUNDS=${ROUNDS:-3}
LAYERS=${LAYERS:-4}
LAYER_MIB=${LAYER_MIB:-64}

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
for tool in podman skopeo tar sha256sum; do
    command -v "$tool" >/dev/null 2>&1 || {
        echo "error: $tool is not installed" >&2
        exit 1
    }
done
# shellcheck source=bench/lib.sh
source bench/lib.sh
bench_setup berth-archive-bench
berth_release_bin

IMAGE=localhost/bench:archive

mkinput() { # dir -> $dir/input.tar
    local d=$1/in i hex diffids="" layers=""
    mkdir -p "$d"
    for ((i = 0; i < LAYERS; i++)); do
        mkdir -p "$d/l$i"
        head -c "$((LAYER_MIB << 20))" /dev/urandom >"$d/l$i/data$i"
        tar -C "$d/l$i" -cf "$d/layer$i.tar" "data$i"
        rm -rf "$d/l$i"
        hex=$(sha256sum "$d/layer$i.tar" | cut -d' ' -f1)
        mv "$d/layer$i.tar" "$d/$hex.tar"
        diffids+="${diffids:+,}\"sha256:$hex\""
        layers+="${layers:+,}\"$hex.tar\""
    done
    printf '{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[%s]}}' "$diffids" >"$d/config.tmp"
    hex=$(sha256sum "$d/config.tmp" | cut -d' ' -f1)
    mv "$d/config.tmp" "$d/$hex.json"
    printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":[%s]}]' "$hex" "$IMAGE" "$layers" >"$d/manifest.json"
    tar -C "$d" -cf "$1/input.tar" .
    rm -rf "$d"
}


declare -A RES RSS
RSSF=$WORK/rss
# run "$@" recording its peak resident set (KiB) in $RSSF
T() { /usr/bin/time -f %M -o "$RSSF" "$@"; }

run_one() { # contender round
    local c=$1 r=$2 s=$WORK/$1-$2 t
    local pa=(--root "$s/root" --runroot "$s/run" --tmpdir "$s/libpod" --storage-driver overlay --events-backend none)
    mkdir -p "$s"
    t=$(now)
    case $c in
    berth) T "$BERTH" load -q --data "$s/data" -i "$WORK/input.tar" >/dev/null ;;
    podman) T podman "${pa[@]}" load -q -i "$WORK/input.tar" >/dev/null ;;
    skopeo) T skopeo --insecure-policy copy -q "docker-archive:$WORK/input.tar" "oci:$s/layout:x" >/dev/null ;;
    esac
    RES["load|$c"]+="$(elapsed "$t") "
    RSS["load|$c"]+="$(cat "$RSSF") "
    t=$(now)
    case $c in
    berth) T "$BERTH" save -q --data "$s/data" -o "$s/out.tar" "$IMAGE" ;;
    podman) T podman "${pa[@]}" save -q -o "$s/out.tar" "$IMAGE" >/dev/null ;;
    skopeo) T skopeo --insecure-policy copy -q "oci:$s/layout:x" "docker-archive:$s/out.tar:$IMAGE" >/dev/null ;;
    esac
    RES["save|$c"]+="$(elapsed "$t") "
    RSS["save|$c"]+="$(cat "$RSSF") "
    if [ "$c" = podman ]; then podman "${pa[@]}" system reset -f >/dev/null 2>&1 || true; fi
    rm -rf "$s"
}

log "making the input: $LAYERS x $LAYER_MIB MiB"
mkinput "$WORK"
BYTES=$(stat -c %s "$WORK/input.tar")
for ((round = 0; round < ROUNDS; round++)); do
    if ((round % 2 == 0)); then order="berth podman skopeo"; else order="skopeo podman berth"; fi
    for c in $order; do
        log "round $round: $c"
        run_one "$c" "$round"
    done
done

mkdir -p bench/results
out=bench/results/archive-$(date +%Y%m%d-%H%M%S).md
{
    echo "- ROUNDS=$ROUNDS interleaved; input $LAYERS x $LAYER_MIB MiB docker-archive ($BYTES bytes); machine: $(nproc) CPUs, shared"
    echo
    echo "| job | berth s | podman s | skopeo s | podman/berth | skopeo/berth | berth MiB/s | peak RSS MiB berth / podman / skopeo |"
    echo "|---|---|---|---|---|---|---|---|"
    for job in load save; do
        b=$(echo "${RES["$job|berth"]}" | median)
        p=$(echo "${RES["$job|podman"]}" | median)
        k=$(echo "${RES["$job|skopeo"]}" | median)
        echo "| $job | $b | $p | $k | $(awk -v a="$p" -v b="$b" 'BEGIN{printf "%.2f", a/b}') | $(awk -v a="$k" -v b="$b" 'BEGIN{printf "%.2f", a/b}') | $(mibps "$BYTES" "$b") | $(for c in berth podman skopeo; do echo "${RSS["$job|$c"]}" | median | awk '{printf "%.0f", $1/1024}'; [ $c = skopeo ] || printf ' / '; done) |"
    done
    echo
    for key in "${!RES[@]}"; do echo "- $key: ${RES[$key]}"; done | sort
} | tee "$out"
