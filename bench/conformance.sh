#!/usr/bin/env bash
# Wall time of `berth conformance check` (release build) against `berth registry serve`
# (release build) and Debian's `docker-registry` (CNCF distribution 2.8), interleaved rounds
# (docker-registry, berth, docker-registry, berth, …). Run by hand; never in CI.
#
#   bench/conformance.sh              ROUNDS=5
#   ROUNDS=1 bench/conformance.sh     a quick smoke run
#
# Parameters (environment):
#   ROUNDS=5        rounds; each round starts both servers fresh (new data dir, new port)
#   LOG_LEVEL=warn  both servers log at this level
#   BERTH_BIN=…     a berth binary to use instead of building target/release/berth
#
# Measures per server and round, each on a fresh repository:
#   full     every v1.1 check (auth, pull, push, discovery, management), test data pushed
#   +main    the same with --include-main (the optional main-branch group too)
#   ro       a read-only run (auth, pull, discovery) of an image skopeo pushed beforehand
# and the pass/fail/warn/skip counts of each run (from its JSON report). Prints a table of
# medians with the ratio docker-registry/berth and writes it to bench/results/<date>-conformance.md
# (gitignored).
set -euo pipefail

ROUNDS=${ROUNDS:-5}
LOG_LEVEL=${LOG_LEVEL:-warn}

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

for tool in skopeo curl jq docker-registry gzip sha256sum; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "error: $tool is not installed" >&2
        echo "hint: apt-get install skopeo curl jq docker-registry (scripts/test installs them)" >&2
        exit 1
    fi
done

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
bench_setup berth-bench-conformance

berth_release_bin

# The image the read-only runs check: one 64 KiB layer.
mkimage "$WORK/ro-image" v1 1 65536

declare -A T # "<server> <kind>" -> space-separated seconds
declare -A C # "<server> <kind>" -> counts of the last run

# One timed check: kind, then the arguments after `check`.
timed_check() {
    local server=$1 kind=$2 json=$WORK/$1-$2.json start secs
    shift 2
    start=$(now)
    # exit status 1 = a check failed (docker-registry's known gaps): still a measurement.
    "$BERTH" conformance check --plain-http --json "$json" "$@" >/dev/null || [ $? -eq 1 ]
    secs=$(elapsed "$start")
    T["$server $kind"]+="$secs "
    C["$server $kind"]=$(jq -r '[.checks[].status] | group_by(.) | map("\(length) \(.[0])") | join(", ")' "$json")
}

for ((r = 1; r <= ROUNDS; r++)); do
    # ABBA: docker-registry, berth, berth, docker-registry, …
    for server in $(abba $((r + 1)) docker-registry berth); do
        start_server "$server" "$r"
        log "round $r/$ROUNDS: $server at $BASE"
        skopeo copy --quiet --dest-tls-verify=false "oci:$WORK/ro-image:v1" \
            "docker://$HOSTPORT/bench/ro:v1" >&2
        timed_check "$server" full "$HOSTPORT/bench/full$r"
        timed_check "$server" +main "$HOSTPORT/bench/main$r" --include-main
        timed_check "$server" ro "$HOSTPORT/bench/ro:v1"
        stop_server
    done
done

out=$(mktemp)
{
    echo "# berth conformance check wall time, $(date -u +%Y-%m-%dT%H:%MZ), $ROUNDS rounds, median s"
    echo
    echo "| run | berth's registry | docker-registry | docker-registry / berth | results (berth; docker-registry) |"
    echo "|---|---|---|---|---|"
    for kind in full +main ro; do
        b=$(echo "${T["berth $kind"]}" | median)
        d=$(echo "${T["docker-registry $kind"]}" | median)
        ratio=$(awk -v b="$b" -v d="$d" 'BEGIN { printf "%.2f", d / b }')
        echo "| $kind | $b | $d | ${ratio}× | ${C["berth $kind"]}; ${C["docker-registry $kind"]} |"
    done
} >"$out"
cat "$out"
mkdir -p "$ROOT/bench/results"
cp "$out" "$ROOT/bench/results/$(date -u +%Y-%m-%d)-conformance.md"
rm -f "$out"
