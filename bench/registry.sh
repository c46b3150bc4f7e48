#!/usr/bin/env bash
# Side-by-side registry benchmark: `berth registry serve` (release build) against Debian's
# `docker-registry` (CNCF distribution 2.8), same data, same clients, interleaved rounds
# (docker-registry, berth, docker-registry, berth, …). Run by hand; never in CI.
#
#   bench/registry.sh                       ROUNDS=3 DURATION=10
#   ROUNDS=1 DURATION=5 bench/registry.sh   a quick smoke run
#
# Parameters (environment):
#   ROUNDS=3          rounds; each round starts both servers fresh (new data dir, new port)
#   DURATION=10       seconds per wrk run
#   CONNECTIONS=16    wrk connections (-c); WRK_THREADS=2 (-t)
#   BIG_LAYERS=4 BIG_MIB=64        the large image: incompressible layers
#   SMALL_LAYERS=200 SMALL_KIB=4   the many-small-layers image
#   LOG_LEVEL=warn    both servers log at this level (request logging off in both)
#   BERTH_BIN=…       a berth binary to use instead of building target/release/berth
#
# Measures per server: (a) manifest GET by tag and blob GET (the small image's 4 KiB layer),
# requests/s with p50/p99 from `wrk --latency`, and blob HEAD with `ab -k -i` (wrk 4.1 cannot
# parse responses to HEAD: wg/wrk#198; ab is single-threaded, so a fast server may be
# limited by ab itself); (b) peak RSS (VmHWM) of the server process; (c) push and pull of the
# large and the many-layer image, by skopeo (oci: layout <-> docker://) and by a plain-curl
# yardstick (POST then PUT ?digest per blob, then the manifest; pull = GET every blob).
# Prints a table of medians over the rounds with the ratio berth/docker-registry and writes
# it to bench/results/<date>.md (gitignored).
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-16}
WRK_THREADS=${WRK_THREADS:-2}
BIG_LAYERS=${BIG_LAYERS:-4}
BIG_MIB=${BIG_MIB:-64}
SMALL_LAYERS=${SMALL_LAYERS:-200}
SMALL_KIB=${SMALL_KIB:-4}
LOG_LEVEL=${LOG_LEVEL:-warn}

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

for tool in skopeo wrk ab curl jq docker-registry gzip sha256sum; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "error: $tool is not installed" >&2
        echo "hint: apt-get install skopeo wrk apache2-utils curl jq docker-registry (scripts/test installs them)" >&2
        exit 1
    fi
done

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
bench_setup berth-bench

# ---------------------------------------------------------------- binaries
berth_release_bin




registry_fixtures

# ---------------------------------------------------------------- servers




peak_rss_mib() {
    awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$SERVER_PID/status"
}

# ---------------------------------------------------------------- measurements
declare -A RESULTS # "<server>|<metric>" -> space-separated values, one per round

record() { # server metric value
    RESULTS["$1|$2"]+="${RESULTS["$1|$2"]:+ }$3"
}


run_wrk() { # server label url [extra wrk args...]
    local server=$1 label=$2 url=$3 out non2xx
    shift 3
    out=$(wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency "$@" "$url")
    non2xx=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' <<<"$out")
    if [ -n "$non2xx" ]; then
        echo "error: $server answered $non2xx non-2xx responses to $label:" >&2
        echo "$out" >&2
        exit 1
    fi
    record "$server" "$label req/s" "$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' <<<"$out")"
    record "$server" "$label p50 ms" "$(to_ms "$(awk '$1 == "50%" { print $2 }' <<<"$out")")"
    record "$server" "$label p99 ms" "$(to_ms "$(awk '$1 == "99%" { print $2 }' <<<"$out")")"
}

# HEAD with ab (apache2-utils): wrk 4.1 cannot parse responses to HEAD (wg/wrk#198).
run_ab_head() { # server label url
    local server=$1 label=$2 url=$3 out
    out=$(ab -q -k -i -c "$CONNECTIONS" -t "$DURATION" -n 100000000 "$url" 2>&1)
    if grep -q '^Non-2xx responses:' <<<"$out" || ! grep -q '^Failed requests: *0$' <<<"$out"; then
        echo "error: $server answered errors to $label:" >&2
        echo "$out" >&2
        exit 1
    fi
    record "$server" "$label req/s" "$(awk '/^Requests per second:/ { printf "%.0f", $4 }' <<<"$out")"
    record "$server" "$label p50 ms" "$(awk '$1 == "50%" { print $2 }' <<<"$out")"
    record "$server" "$label p99 ms" "$(awk '$1 == "99%" { print $2 }' <<<"$out")"
}

skopeo_copy() {
    skopeo --insecure-policy copy --quiet --preserve-digests "$@" >/dev/null
}

transfer() { # server label bytes command...
    local server=$1 label=$2 bytes=$3 t s
    shift 3
    t=$(now)
    "$@"
    s=$(elapsed "$t")
    record "$server" "$label s" "$s"
    record "$server" "$label MiB/s" "$(mibps "$bytes" "$s")"
}

bench_server() { # server round
    local server=$1 round=$2 small_digest pulled
    start_server "$server" "$round"
    log "round $round: $server on $BASE (pid $SERVER_PID)"

    skopeo_copy --dest-tls-verify=false "oci:$WORK/small:v1" "docker://$HOSTPORT/bench/small:v1"
    small_digest=$(jq -r '.layers[0].digest' "$WORK/small/blobs/sha256/$(cat "$WORK/small/manifest.digest")")
    run_wrk "$server" "manifest GET" "$BASE/v2/bench/small/manifests/v1" \
        -H 'Accept: application/vnd.oci.image.manifest.v1+json'
    run_wrk "$server" "blob GET" "$BASE/v2/bench/small/blobs/$small_digest"
    run_ab_head "$server" "blob HEAD (ab)" "$BASE/v2/bench/small/blobs/$small_digest"

    pulled=$WORK/pulled
    for image in big many; do
        local bytes=$BIG_BYTES
        [ "$image" = many ] && bytes=$MANY_BYTES
        transfer "$server" "curl push $image" "$bytes" curl_push "$WORK/$image" "bench/curl-$image"
        transfer "$server" "curl pull $image" "$bytes" curl_pull "$WORK/$image" "bench/curl-$image"
        transfer "$server" "skopeo push $image" "$bytes" \
            skopeo_copy --dest-tls-verify=false "oci:$WORK/$image:v1" "docker://$HOSTPORT/bench/skopeo-$image:v1"
        rm -rf "$pulled"
        transfer "$server" "skopeo pull $image" "$bytes" \
            skopeo_copy --src-tls-verify=false "docker://$HOSTPORT/bench/skopeo-$image:v1" "oci:$pulled:v1"
        rm -rf "$pulled"
    done

    record "$server" "peak RSS MiB" "$(peak_rss_mib)"
    stop_server
    rm -rf "$WORK/$server-r$round/data"
}

for ((round = 1; round <= ROUNDS; round++)); do
    # ABBA: docker-registry, berth, berth, docker-registry, …
    for server in $(abba $((round + 1)) docker-registry berth); do
        bench_server "$server" "$round"
    done
done

# ---------------------------------------------------------------- report

METRICS=(
    "manifest GET req/s|higher" "manifest GET p50 ms|lower" "manifest GET p99 ms|lower"
    "blob GET req/s|higher" "blob GET p50 ms|lower" "blob GET p99 ms|lower"
    "blob HEAD (ab) req/s|higher" "blob HEAD (ab) p50 ms|lower" "blob HEAD (ab) p99 ms|lower"
    "peak RSS MiB|lower"
)
for image in big many; do
    for tool in skopeo curl; do
        for dir in push pull; do
            METRICS+=("$tool $dir $image MiB/s|higher" "$tool $dir $image s|lower")
        done
    done
done

DATE=$(date +%Y-%m-%d)
mkdir -p "$ROOT/bench/results"
OUT=$ROOT/bench/results/$DATE.md
[ -e "$OUT" ] && OUT=$ROOT/bench/results/$DATE-$(date +%H%M%S).md

{
    echo "# berth registry vs docker-registry — $DATE"
    echo
    echo "- berth: $("$BERTH" --version 2>/dev/null || echo "$BERTH") (release build), \`registry serve --log-level $LOG_LEVEL\`"
    echo "- docker-registry: $(docker-registry --version 2>/dev/null | head -1), filesystem storage, \`blobdescriptor: inmemory\` cache (Debian's default), log level $LOG_LEVEL, access log off"
    echo "- clients: $(skopeo --version), $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2), $(curl --version | head -1 | cut -d' ' -f1-2)"
    echo "- machine: $(nproc) CPUs ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)), $(uname -sr)"
    echo "- ROUNDS=$ROUNDS (interleaved ABBA: docker-registry first in odd rounds, berth first in even ones; each on a fresh data dir), wrk -t$WRK_THREADS -c$CONNECTIONS -d${DURATION}s --latency; HEAD by ab -k -i -c$CONNECTIONS -t$DURATION (single-threaded; wrk cannot send HEAD, wg/wrk#198)"
    echo "- big: $BIG_LAYERS x $BIG_MIB MiB incompressible layers ($BIG_BYTES bytes); many: $SMALL_LAYERS x $SMALL_KIB KiB ($MANY_BYTES bytes); clients and servers share the machine"
    echo
    echo "Medians over the rounds; ratio = berth / docker-registry."
    echo
    echo "| metric | docker-registry | berth | ratio | better when |"
    echo "| --- | ---: | ---: | ---: | --- |"
    for entry in "${METRICS[@]}"; do
        metric=${entry%|*}
        better=${entry#*|}
        a=$(median <<<"${RESULTS["docker-registry|$metric"]:-0}")
        b=$(median <<<"${RESULTS["berth|$metric"]:-0}")
        ratio=$(awk -v a="$a" -v b="$b" 'BEGIN { if (a > 0) printf "%.2f", b / a; else print "n/a" }')
        echo "| $metric | $a | $b | $ratio | $better |"
    done
    echo
    echo "Per-round values (docker-registry / berth):"
    echo
    for entry in "${METRICS[@]}"; do
        metric=${entry%|*}
        echo "- $metric: ${RESULTS["docker-registry|$metric"]:-} / ${RESULTS["berth|$metric"]:-}"
    done
} | tee "$OUT"

log "results written to $OUT"
