#!/usr/bin/env bash
# Layer unpack benchmark: berth-image's unpacker against the decompressor alone (the limit:
# `gzip -d` / `zstd -d` to /dev/null) and against `umoci unpack` of the same one-layer image,
# side by side in one run, interleaved (ABBA: the order of the contenders reverses from one
# round to the next). Run by hand; never in CI.
#
#   bench/unpack.sh                 ROUNDS=5
#   ROUNDS=1 MIB=16 bench/unpack.sh a quick smoke run
#
# Layers: "random" = FILES files of random bytes (MIB MiB in all) in one tar; "debian" (when
# scripts/make-debian-rootfs has run) = the debootstrap minbase tree (about 200 MiB, 6,800
# entries: a real-shaped, compressible layer) as GNU tar writes it. Each compressed with
# `gzip -6` and `zstd -3`. berth unpacks with the release build of
# crates/image/examples/unpack_layer.rs (apply mode, diff ID computed); umoci 0.4 unpacks the
# OCI layout `oci:DIR:bench` into a bundle (it also computes the diff ID and writes an mtree
# manifest of the result). Targets go to a tmpfs (TMPFS=1, the default, as root) so that the
# numbers are the unpackers' own and not ext4's inode allocator's (re-creating a 6,800-file
# tree just deleted made ext4's `recently_deleted` scan 50 % of a run's profile, and made
# whichever contender ran after a deletion slower); TMPFS=0 unpacks beside the blobs. Targets
# are removed between runs (not timed). Results: medians in seconds and MiB/s of uncompressed tar, also written to
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
OUT_DIR=$WORK
if [ "${TMPFS:-1}" = 1 ] && [ "$(id -u)" = 0 ]; then
    mkdir "$WORK/mnt"
    mount -t tmpfs -o size=2g,mode=0755 berth-unpack-bench "$WORK/mnt"
    OUT_DIR=$WORK/mnt
    unpack_cleanup() {
        local status=$?
        umount "$WORK/mnt" 2>/dev/null || true
        (exit "$status")
        bench_cleanup
    }
    trap unpack_cleanup EXIT
fi

log "building crates/image/examples/unpack_layer (release)"
cargo build --release -q -p berth-image --example unpack_layer >&2
UNPACK=${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/unpack_layer

# ---------------------------------------------------------------- the layers
KINDS="random"
mkdir -p "$WORK/src"
per=$((MIB * 1048576 / FILES))
for ((i = 0; i < FILES; i++)); do
    head -c "$per" /dev/urandom >"$WORK/src/file$i"
done
tar -C "$WORK/src" -cf "$WORK/random.tar" .
rm -rf "$WORK/src"
DEBIAN=${BERTH_TEST_DEBIAN_ROOTFS:-/var/cache/berth-test/debian-bookworm-minbase}
if [ -e "$DEBIAN.complete" ]; then
    KINDS="random debian"
    tar --format=posix --numeric-owner --xattrs --xattrs-include='*' \
        --pax-option=delete=atime,delete=ctime -C "$DEBIAN" -cf "$WORK/debian.tar" .
else
    log "no Debian root filesystem (scripts/make-debian-rootfs): the debian layer is skipped"
fi

mkonelayer() { # dir blob media-type diff-id
    local dir=$1 blob=$2 mt=$3 diffid=$4 hex size lhex lsize
    mklayout "$dir"
    cp "$blob" "$dir/layer.tmp"
    lsize=$(stat -c %s "$dir/layer.tmp")
    lhex=$(addblob "$dir" "$dir/layer.tmp")
    printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' "$diffid" >"$dir/config.tmp"
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
declare -A TAR_BYTES
for k in $KINDS; do
    gzip -6 -n -c "$WORK/$k.tar" >"$WORK/$k.tar.gz"
    zstd -3 -q -c "$WORK/$k.tar" >"$WORK/$k.tar.zst"
    TAR_BYTES[$k]=$(stat -c %s "$WORK/$k.tar")
    diffid=$(sha256sum "$WORK/$k.tar" | cut -d' ' -f1)
    rm -f "$WORK/$k.tar"
    mkonelayer "$WORK/oci-$k-gzip" "$WORK/$k.tar.gz" "$MT_GZ" "$diffid"
    mkonelayer "$WORK/oci-$k-zstd" "$WORK/$k.tar.zst" "$MT_ZST" "$diffid"
done
UMOCI_ZSTD=1
if ! umoci unpack --image "$WORK/oci-random-zstd:bench" "$WORK/probe" >/dev/null 2>&1; then
    log "this umoci cannot unpack zstd layers: its zstd rows are skipped"
    UMOCI_ZSTD=0
fi
rm -rf "$WORK/probe"

# ---------------------------------------------------------------- the runs
run() { # contender kind compression
    local c=$1 k=$2 z=$3 out=$OUT_DIR/out start blob mt
    rm -rf "$out"
    if [ "$z" = gzip ]; then blob=$WORK/$k.tar.gz mt=$MT_GZ; else blob=$WORK/$k.tar.zst mt=$MT_ZST; fi
    case "$c" in
    berth)
        mkdir "$out"
        start=$(now)
        "$UNPACK" "$mt" "$blob" "$out" >/dev/null
        ;;
    decompress)
        start=$(now)
        if [ "$z" = gzip ]; then gzip -dc "$blob" >/dev/null; else zstd -dcq "$blob" >/dev/null; fi
        ;;
    umoci)
        start=$(now)
        umoci unpack --image "$WORK/oci-$k-$z:bench" "$out" >/dev/null 2>&1
        ;;
    esac
    elapsed "$start"
    rm -rf "$out"
}

declare -A RES
for ((round = 0; round < ROUNDS; round++)); do
    for k in $KINDS; do
        for z in gzip zstd; do
            contenders="berth decompress umoci"
            [ "$z" = zstd ] && [ "$UMOCI_ZSTD" = 0 ] && contenders="berth decompress"
            if ((round % 2)); then contenders=$(echo "$contenders" | tr ' ' '\n' | tac | tr '\n' ' '); fi
            for c in $contenders; do
                t=$(run "$c" "$k" "$z")
                RES["$k|$z|$c"]+="$t "
                log "round $round $k $z $c ${t}s"
            done
        done
    done
done

mkdir -p "$ROOT/bench/results"
report=$ROOT/bench/results/unpack-$(date +%Y%m%d-%H%M%S).md
{
    echo "## Layer unpack, median of $ROUNDS rounds (ABBA)"
    echo
    echo "random = ${MIB} MiB incompressible ($FILES files); debian = debootstrap minbase as one layer; targets on $(df --output=fstype "$OUT_DIR" | tail -1)"
    echo "machine: $(nproc) CPUs (shared); $(umoci --version); $(gzip --version | head -1); $(zstd --version)"
    echo
    echo "| layer | compression | contender | seconds | MiB/s (uncompressed) | its time / berth's |"
    echo "| --- | --- | --- | --- | --- | --- |"
    for k in $KINDS; do
        for z in gzip zstd; do
            b=$(echo "${RES["$k|$z|berth"]}" | median)
            for c in berth decompress umoci; do
                [ -n "${RES["$k|$z|$c"]:-}" ] || continue
                m=$(echo "${RES["$k|$z|$c"]}" | median)
                ratio=$(awk -v a="$m" -v b="$b" 'BEGIN { printf "%.2fx", a / b }')
                echo "| $k | $z | $c | $m | $(mibps "${TAR_BYTES[$k]}" "$m") | $ratio |"
            done
        done
    done
} | tee "$report"
