#!/usr/bin/env bash
# Layer unpack benchmark: berth-image's unpacker against the decompressor alone (the limit:
# `gzip -d` / `zstd -d` to /dev/null) and against `umoci unpack` of the same one-layer image,
# side by side in one run, interleaved (ABBA: the order of the contenders reverses from one
# round to the next). Run by hand; never in CI.
#
#   bench/unpack.sh                 ROUNDS=5, one 64 MiB incompressible layer
#   ROUNDS=1 MIB=16 bench/unpack.sh a quick smoke run
#
# The layer is FILES files of random bytes (MIB MiB in all) in one tar, compressed with
# `gzip -6` and `zstd -3`. berth unpacks with the release build of
# crates/image/examples/unpack_layer.rs (apply mode, diff ID computed); umoci 0.4 unpacks the
# OCI layout `oci:DIR:bench` into a bundle (it also computes the diff ID and writes an mtree
# manifest of the result). Targets are on the same file system, removed between runs (not
# timed). Results: medians in seconds and MiB/s of uncompressed tar, also written to
# bench/results/unpack-<date>.md (gitignored).
set -euo pipefail

ROUNDS=${ROUNDS:-5}
MIB=${MIB:-64}
FILES=${FILES:-16}

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
for tool in umoci gzip zstd tar sha256sum; do
    command -v "$tool" >/dev/null 2>&1 || {
        echo "error: $tool is not installed" >&2
        exit 1
    }
done

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
bench_setup berth-unpack-bench

log "building crates/image/examples/unpack_layer (release)"
cargo build --release -q -p berth-image --example unpack_layer >&2
UNPACK=${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/unpack_layer

# ---------------------------------------------------------------- the layer
mkdir -p "$WORK/src"
per=$((MIB * 1048576 / FILES))
for ((i = 0; i < FILES; i++)); do
    head -c "$per" /dev/urandom >"$WORK/src/file$i"
done
tar -C "$WORK/src" -cf "$WORK/layer.tar" .
rm -rf "$WORK/src"
gzip -6 -n -c "$WORK/layer.tar" >"$WORK/layer.tar.gz"
zstd -3 -q -c "$WORK/layer.tar" >"$WORK/layer.tar.zst"
TAR_BYTES=$(stat -c %s "$WORK/layer.tar")
DIFF_ID=$(sha256sum "$WORK/layer.tar" | cut -d' ' -f1)
rm -f "$WORK/layer.tar"

mkonelayer() { # dir blob media-type
    local dir=$1 blob=$2 mt=$3 hex size lhex lsize
    mklayout "$dir"
    cp "$blob" "$dir/layer.tmp"
    lsize=$(stat -c %s "$dir/layer.tmp")
    lhex=$(addblob "$dir" "$dir/layer.tmp")
    printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' "$DIFF_ID" >"$dir/config.tmp"
    size=$(stat -c %s "$dir/config.tmp")
    hex=$(addblob "$dir" "$dir/config.tmp")
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"%s","digest":"sha256:%s","size":%s}]}' \
        "$hex" "$size" "$mt" "$lhex" "$lsize" >"$dir/manifest.tmp"
    size=$(stat -c %s "$dir/manifest.tmp")
    hex=$(addblob "$dir" "$dir/manifest.tmp")
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"bench"}}]}' \
        "$hex" "$size" >"$dir/index.json"
}
MT_GZ=application/vnd.oci.image.layer.v1.tar+gzip
MT_ZST=application/vnd.oci.image.layer.v1.tar+zstd
mkonelayer "$WORK/oci-gz" "$WORK/layer.tar.gz" "$MT_GZ"
mkonelayer "$WORK/oci-zst" "$WORK/layer.tar.zst" "$MT_ZST"
UMOCI_ZSTD=1
if ! umoci unpack --image "$WORK/oci-zst:bench" "$WORK/probe" >/dev/null 2>&1; then
    log "this umoci cannot unpack zstd layers: its zstd row is skipped"
    UMOCI_ZSTD=0
fi
rm -rf "$WORK/probe"

# ---------------------------------------------------------------- the runs
run() { # contender compression
    local c=$1 z=$2 out=$WORK/out
    rm -rf "$out"
    local start
    case "$c" in
    berth)
        mkdir "$out"
        start=$(now)
        if [ "$z" = gzip ]; then
            "$UNPACK" "$MT_GZ" "$WORK/layer.tar.gz" "$out" >/dev/null
        else
            "$UNPACK" "$MT_ZST" "$WORK/layer.tar.zst" "$out" >/dev/null
        fi
        ;;
    decompress)
        start=$(now)
        if [ "$z" = gzip ]; then gzip -dc "$WORK/layer.tar.gz" >/dev/null; else zstd -dcq "$WORK/layer.tar.zst" >/dev/null; fi
        ;;
    umoci)
        start=$(now)
        if [ "$z" = gzip ]; then
            umoci unpack --image "$WORK/oci-gz:bench" "$out" >/dev/null 2>&1
        else
            umoci unpack --image "$WORK/oci-zst:bench" "$out" >/dev/null 2>&1
        fi
        ;;
    esac
    elapsed "$start"
    rm -rf "$out"
}

declare -A RES
for ((round = 0; round < ROUNDS; round++)); do
    for z in gzip zstd; do
        contenders="berth decompress umoci"
        [ "$z" = zstd ] && [ "$UMOCI_ZSTD" = 0 ] && contenders="berth decompress"
        if ((round % 2)); then contenders=$(echo "$contenders" | tr ' ' '\n' | tac | tr '\n' ' '); fi
        for c in $contenders; do
            t=$(run "$c" "$z")
            RES["$z|$c"]+="$t "
            log "round $round $z $c ${t}s"
        done
    done
done

mkdir -p "$ROOT/bench/results"
report=$ROOT/bench/results/unpack-$(date +%Y%m%d-%H%M%S).md
{
    echo "## Layer unpack: one ${MIB} MiB incompressible layer ($FILES files), median of $ROUNDS (ABBA)"
    echo
    echo "machine: $(nproc) CPUs (shared); $(umoci --version); $(gzip --version | head -1); $(zstd --version)"
    echo
    echo "| compression | contender | seconds | MiB/s (uncompressed) | its time / berth's |"
    echo "| --- | --- | --- | --- | --- |"
    for z in gzip zstd; do
        b=$(echo "${RES["$z|berth"]}" | median)
        for c in berth decompress umoci; do
            [ -n "${RES["$z|$c"]:-}" ] || continue
            m=$(echo "${RES["$z|$c"]}" | median)
            ratio=$(awk -v a="$m" -v b="$b" 'BEGIN { printf "%.2fx", a / b }')
            echo "| $z | $c | $m | $(mibps "$TAR_BYTES" "$m") | $ratio |"
        done
    done
} | tee "$report"
