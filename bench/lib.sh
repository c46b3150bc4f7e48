#!/usr/bin/env bash
# Helpers shared by the bench scripts (sourced): fixture layouts, server start/stop, timing.
# Uses the caller's LOG_LEVEL and BERTH; sets WORK, SERVER_PID, BASE, HOSTPORT.

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# Make the work directory and the traps that kill the running server by PID and remove it.
bench_setup() { # prefix
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
    SERVER_PID=""
    trap bench_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

# BERTH: $BERTH_BIN if set, else target/release/berth, built now (the caller's ROOT).
berth_release_bin() {
    if [ -n "${BERTH_BIN:-}" ]; then
        BERTH=$BERTH_BIN
    else
        log "building berth (release)"
        cargo build --release -p berth-cli >&2
        BERTH=${CARGO_TARGET_DIR:-$ROOT/target}/release/berth
    fi
}

bench_cleanup() {
    local status=$?
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
    exit "$status"
}

# ---------------------------------------------------------------- fixtures
# Three OCI layouts, made once, pushed identically to both servers:
# (MKIMAGE_TAR=1: each layer a tar holding the random bytes as one file, for unpacking)
#   small: one 4 KiB layer (the wrk target)   big: BIG_LAYERS x BIG_MIB MiB   many: SMALL_LAYERS x SMALL_KIB KiB
# Layers are random bytes through `gzip -1`: incompressible, and valid gzip so that skopeo
# copies them as they are instead of compressing them on push.
mklayout() { # dir
    mkdir -p "$1/blobs/sha256"
    printf '{"imageLayoutVersion":"1.0.0"}' >"$1/oci-layout"
}

addblob() { # dir file -> prints digest hex; moves the file into the layout
    local hex
    hex=$(sha256sum "$2" | cut -d' ' -f1)
    mv "$2" "$1/blobs/sha256/$hex"
    echo "$hex"
}

mkimage() { # dir tag count bytes
    local dir=$1 tag=$2 count=$3 bytes=$4 i hex size layers="" diffids="" tmp
    mklayout "$dir"
    for ((i = 0; i < count; i++)); do
        tmp=$dir/layer.tmp
        head -c "$bytes" /dev/urandom >"$tmp.raw"
        if [ "${MKIMAGE_TAR:-0}" = 1 ]; then # an unpackable layer: a tar of the bytes as one file
            mv "$tmp.raw" "$dir/file$i"
            tar -C "$dir" -cf "$tmp.raw" "file$i"
            rm -f "$dir/file$i"
        fi
        diffids+="${diffids:+,}\"sha256:$(sha256sum "$tmp.raw" | cut -d' ' -f1)\""
        gzip -1 -n -c "$tmp.raw" >"$tmp"
        rm -f "$tmp.raw"
        size=$(stat -c %s "$tmp")
        hex=$(addblob "$dir" "$tmp")
        layers+="${layers:+,}{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:$hex\",\"size\":$size}"
    done
    printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[%s]}}' "$diffids" >"$dir/config.tmp"
    size=$(stat -c %s "$dir/config.tmp")
    hex=$(addblob "$dir" "$dir/config.tmp")
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[%s]}' \
        "$hex" "$size" "$layers" >"$dir/manifest.tmp"
    size=$(stat -c %s "$dir/manifest.tmp")
    hex=$(addblob "$dir" "$dir/manifest.tmp")
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"%s"}}]}' \
        "$hex" "$size" "$tag" >"$dir/index.json"
    echo "$hex" >"$dir/manifest.digest"
}

# The registry benches' images, OCI layouts tagged v1 under $WORK: small (one 4 KiB layer),
# big ($BIG_LAYERS x $BIG_MIB MiB) and many ($SMALL_LAYERS x $SMALL_KIB KiB); sets BIG_BYTES
# and MANY_BYTES.
registry_fixtures() {
    log "generating fixtures in $WORK"
    mkimage "$WORK/small" v1 1 4096
    mkimage "$WORK/big" v1 "$BIG_LAYERS" $((BIG_MIB * 1024 * 1024))
    mkimage "$WORK/many" v1 "$SMALL_LAYERS" $((SMALL_KIB * 1024))
    BIG_BYTES=$(layout_bytes "$WORK/big")
    MANY_BYTES=$(layout_bytes "$WORK/many")
}

layout_bytes() { # dir: total bytes of its config and layers
    local m
    m=$(cat "$1/manifest.digest")
    jq '[.config.size] + [.layers[].size] | add' "$1/blobs/sha256/$m"
}

free_port() {
    local p
    for _ in $(seq 1 100); do
        p=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return
        fi
    done
    echo "error: no free port found" >&2
    exit 1
}

# The curl yardstick (registry.sh, registry-s3.sh), against $BASE with scratch files in
# $WORK: POST, then PUT ?digest with the file, per blob; then the manifest.
curl_push() { # layout repo
    local dir=$1 repo=$2 m hex loc sep
    m=$(cat "$dir/manifest.digest")
    for hex in $(jq -r '.config.digest, .layers[].digest' "$dir/blobs/sha256/$m" | cut -d: -f2); do
        loc=$(curl -sS -f -X POST -D - -o /dev/null "$BASE/v2/$repo/blobs/uploads/" |
            awk 'tolower($1) == "location:" { print $2 }' | tr -d '\r')
        case $loc in http*) ;; *) loc=$BASE$loc ;; esac
        case $loc in *\?*) sep='&' ;; *) sep='?' ;; esac
        curl -sS -f -o /dev/null -X PUT -H 'Content-Type: application/octet-stream' \
            -T "$dir/blobs/sha256/$hex" "$loc${sep}digest=sha256:$hex"
    done
    curl -sS -f -o /dev/null -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
        --data-binary "@$dir/blobs/sha256/$m" "$BASE/v2/$repo/manifests/latest"
}

# pull = GET every blob to /dev/null (one curl, one connection)
curl_pull() { # layout repo
    local dir=$1 repo=$2 m
    m=$(cat "$dir/manifest.digest")
    {
        echo "url = \"$BASE/v2/$repo/manifests/latest\""
        echo 'output = "/dev/null"'
        for d in $(jq -r '.config.digest, .layers[].digest' "$dir/blobs/sha256/$m"); do
            echo "url = \"$BASE/v2/$repo/blobs/$d\""
            echo 'output = "/dev/null"'
        done
    } >"$WORK/urls.cfg"
    curl -sS -f -H 'Accept: application/vnd.oci.image.manifest.v1+json' -K "$WORK/urls.cfg"
}

wait_ready() { # url pid
    for _ in $(seq 1 300); do
        if curl -sf -o /dev/null "$1/v2/"; then return 0; fi
        if ! kill -0 "$2" 2>/dev/null; then return 1; fi
        sleep 0.1
    done
    return 1
}

start_server() { # name round -> sets SERVER_PID, BASE, HOSTPORT
    local name=$1 round=$2 port dir
    port=$(free_port)
    dir=$WORK/$name-r$round
    mkdir -p "$dir/data"
    case $name in
    docker-registry)
        cat >"$dir/config.yml" <<EOF
version: 0.1
log:
  level: $LOG_LEVEL
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: 127.0.0.1:$port
health:
  storagedriver:
    enabled: false
EOF
        docker-registry serve "$dir/config.yml" >"$dir/server.log" 2>&1 &
        ;;
    berth)
        "$BERTH" --log-level "$LOG_LEVEL" registry serve --listen "127.0.0.1:$port" --data "$dir/data" \
            >"$dir/server.log" 2>&1 &
        ;;
    esac
    SERVER_PID=$!
    HOSTPORT=127.0.0.1:$port
    BASE=http://$HOSTPORT
    if ! wait_ready "$BASE" "$SERVER_PID"; then
        # the probed port can be taken between the probe and the bind: try another
        if grep -qiE 'address already in use' "$dir/server.log" && [ "${START_ATTEMPT:-0}" -lt 5 ]; then
            stop_server
            rm -rf "$dir"
            START_ATTEMPT=$((${START_ATTEMPT:-0} + 1)) start_server "$name" "$round"
            return
        fi
        echo "error: $name did not start; its log:" >&2
        cat "$dir/server.log" >&2
        exit 1
    fi
}

stop_server() {
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}

now() { date +%s.%N; }

# ABBA order of two contenders: `abba N A B` prints "A B" for even N and "B A" for odd N. The
# callers pass a number that changes parity from one pairing to the next and, for the same
# job, from one round to the next, so that neither contender always runs first (a warmer page
# cache, a quieter moment on a shared machine): A B, B A, A B, B A, …
abba() { # n a b
    if (($1 % 2 == 0)); then echo "$2 $3"; else echo "$3 $2"; fi
}

elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }

mibps() { awk -v bytes="$1" -v s="$2" 'BEGIN { printf "%.2f", bytes / 1048576 / s }'; }

# Median of whitespace-separated numbers on stdin. Empty fields (the values are recorded as
# "a b c ", with a trailing space) are skipped: counted, they made an empty first element after
# sorting, so the "median" of 3 values was the mean of the two smallest, and of 1 value half it.
median() { tr ' ' '\n' | awk 'NF' | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# wrk's latency figures in milliseconds (registry.sh, admission.sh)
to_ms() { # "185.00us" | "1.23ms" | "1.01s" -> milliseconds
    awk -v v="$1" 'BEGIN {
        if (v ~ /us$/) { sub(/us$/, "", v); printf "%.3f", v / 1000 }
        else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.3f", v }
        else if (v ~ /m$/) { sub(/m$/, "", v); printf "%.3f", v * 60000 }
        else { sub(/s$/, "", v); printf "%.3f", v * 1000 }
    }'
}
