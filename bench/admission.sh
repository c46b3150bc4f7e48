#!/usr/bin/env bash
# Admission webhook benchmark: `berth admission serve` answering AdmissionReviews (POST
# /validate) for a Pod whose image is pinned and signed by dev, CI and prod (three
# signatures, three roles), against a local `berth registry serve`. Run by hand; never in CI.
#
#   bench/admission.sh                       DURATION=10 per run
#   DURATION=3 bench/admission.sh            a quick smoke run
#   BERTH_BIN=target/debug/berth bench/admission.sh   another binary (default: a release build)
#
# Two webhooks over plain HTTP on loopback (TLS is the API server's business here, and the
# same for both), measured with `wrk --latency` at 1, 16 and 64 connections:
#   cached:     the verdict comes from the cache (the first request verifies)
#   first-seen: `[cache] max_entries = 0`, so every review resolves the digest, lists and
#               fetches the three signatures and verifies them: the cost of an image the
#               webhook has not seen
# Targets (issue 19): p99 under 2 ms for cached verdicts at 16 connections; a first-seen image
# with three signatures under 50 ms p99. Results: requests/s, p50 and p99 in ms, also written
# to bench/results/admission-<date>.md (gitignored).
set -euo pipefail

DURATION=${DURATION:-10}
WRK_THREADS=${WRK_THREADS:-2}
LOG_LEVEL=${LOG_LEVEL:-warn}

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
for tool in wrk curl jq sha256sum gzip; do
    command -v "$tool" >/dev/null 2>&1 || {
        echo "error: $tool is not installed (apt-get install wrk curl jq)" >&2
        exit 1
    }
done
# shellcheck source=bench/lib.sh
source bench/lib.sh
bench_setup berth-admission-bench
berth_release_bin

export XDG_CONFIG_HOME=$WORK/xdg DOCKER_CONFIG=$WORK/xdg/docker
mkdir -p "$XDG_CONFIG_HOME"
start_server berth 0
REGISTRY_PID=$SERVER_PID
log "registry on $HOSTPORT"

# an image, signed by three test CAs' leaves: CN=dev, CN=ci, CN=prod (O=Notary, as
# `berth cert generate-test` makes them)
mkimage "$WORK/img" v1 1 4096
"$BERTH" copy -q "oci:$WORK/img:v1" "$HOSTPORT/bench:v1" >/dev/null
DIGEST=sha256:$(cat "$WORK/img/manifest.digest")
for who in dev ci prod; do
    "$BERTH" --log-level "$LOG_LEVEL" cert generate-test --ca "$who" >/dev/null 2>&1
    "$BERTH" --log-level "$LOG_LEVEL" sign --plain-http --key "$who" "$HOSTPORT/bench@$DIGEST" >/dev/null 2>&1
done

cat >"$WORK/policy.json" <<EOF
{
  "version": "berth.policy/v1",
  "trustStores": ["ca:dev", "ca:ci", "ca:prod"],
  "roles": {
    "dev": {"trustedIdentities": ["x509.subject: C=US, ST=WA, O=Notary, CN=dev"]},
    "ci": {"trustedIdentities": ["x509.subject: C=US, ST=WA, O=Notary, CN=ci"]},
    "prod": {"trustedIdentities": ["x509.subject: C=US, ST=WA, O=Notary, CN=prod"]}
  },
  "rules": [{
    "name": "production",
    "registryScopes": ["*"],
    "namespaces": ["prod-*"],
    "signatureVerification": {"level": "strict"},
    "trustStores": ["ca:dev", "ca:ci", "ca:prod"],
    "requirement": {"allOf": ["dev", "ci", "prod"]}
  }]
}
EOF
"$BERTH" policy check "$WORK/policy.json" >/dev/null

cat >"$WORK/review.json" <<EOF
{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{
 "uid":"bench","kind":{"group":"","version":"v1","kind":"Pod"},
 "resource":{"group":"","version":"v1","resource":"pods"},"name":"web","namespace":"prod-eu",
 "operation":"CREATE","userInfo":{"username":"bench"},
 "object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web"},
  "spec":{"containers":[{"name":"web","image":"$HOSTPORT/bench@$DIGEST"}]}},
 "oldObject":null,"dryRun":false}}
EOF
cat >"$WORK/post.lua" <<EOF
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = assert(io.open("$WORK/review.json", "rb"))
wrk.body = f:read("*a")
f:close()
EOF

HOOK_PIDS=()
start_hook() { # name extra-toml -> sets HOOK_BASE (not in a subshell: HOOK_PIDS must keep the pid)
    local name=$1 extra=$2 dir=$WORK/$1 base
    mkdir -p "$dir"
    cat >"$dir/admission.toml" <<EOF
listen = "127.0.0.1:0"
policy = "$WORK/policy.json"
trust_store = "$XDG_CONFIG_HOME/berth/truststore"
$extra
[registry]
plain_http = ["$HOSTPORT"]
EOF
    # the listening line is at info; reviews of admitted pods log at debug
    "$BERTH" --log-level "$LOG_LEVEL,berth::commands=info" admission serve --config "$dir/admission.toml" >/dev/null 2>"$dir/log" &
    HOOK_PIDS+=($!)
    for _ in $(seq 1 100); do
        base=$(grep -o 'berth admission listening on http://[0-9.:]*' "$dir/log" 2>/dev/null | awk '{ print $NF }' || true)
        [ -n "$base" ] && break
        sleep 0.1
    done
    [ -n "$base" ] || {
        echo "error: the $name webhook did not start:" >&2
        cat "$dir/log" >&2
        exit 1
    }
    HOOK_BASE=$base
}
stop_hooks() {
    for p in "${HOOK_PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
}
trap 'stop_hooks; bench_cleanup' EXIT

# the answers are checked before anything is timed
start_hook cached ""
CACHED=$HOOK_BASE
start_hook first-seen "[cache]
max_entries = 0"
FIRST=$HOOK_BASE
for base in "$CACHED" "$FIRST"; do
    allowed=$(curl -sf -X POST -H 'Content-Type: application/json' --data-binary "@$WORK/review.json" \
        "$base/validate?timeout=10s" | jq -r .response.allowed)
    [ "$allowed" = true ] || {
        echo "error: $base did not admit the signed image" >&2
        exit 1
    }
done

RESULTS=()
record() { RESULTS+=("| $1 | $2 | $3 |"); log "$1: $2 = $3"; }
run() { # label base connections
    local out threads=$WRK_THREADS
    [ "$3" -lt "$threads" ] && threads=$3
    out=$(wrk -t"$threads" -c"$3" -d"${DURATION}s" --latency -s "$WORK/post.lua" "$2/validate?timeout=10s")
    record "$1, $3 conn" "req/s" "$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' <<<"$out")"
    record "$1, $3 conn" "p50 ms" "$(to_ms "$(awk '$1 == "50%" { print $2 }' <<<"$out")")"
    record "$1, $3 conn" "p99 ms" "$(to_ms "$(awk '$1 == "99%" { print $2 }' <<<"$out")")"
}
for c in 1 16 64; do
    run cached "$CACHED" "$c"
    run first-seen "$FIRST" "$c"
done
kill "$REGISTRY_PID" 2>/dev/null || true

mkdir -p bench/results
out=bench/results/admission-$(date +%Y%m%d-%H%M%S).md
{
    echo "# berth admission: POST /validate, one pinned image with 3 signatures ($(date -u +%F), ${DURATION}s per run, wrk -t$WRK_THREADS)"
    echo
    echo "| run | measure | value |"
    echo "| --- | --- | --- |"
    printf '%s\n' "${RESULTS[@]}"
} | tee "$out"
