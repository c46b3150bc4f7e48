#!/usr/bin/env bash
# Admission benchmark: `berth admission serve` answering AdmissionReview requests as the
# Kubernetes API server sends them (HTTPS POST, `?timeout=10s`), measured with wrk (Debian's)
# at 1, 16 and 64 connections. Run by hand; never in CI.
#
#   bench/admission.sh                                  a full run: DURATION=10s, MEMORY=10m
#   DURATION=3s MEMORY=30s IMAGES=100 bench/admission.sh   a quick smoke run
#
# What is measured, against one local `berth registry serve` (plain HTTP on loopback):
#   cached:     /validate of a Pod whose image is pinned to a digest that carries the three
#               signatures its namespace's rule requires (dev, CI, prod: allOf); after the
#               first review every answer comes from the verdict cache.
#   first-seen: reviews of IMAGES distinct images (each signed by dev, CI and prod), taken in
#               turn, to a second webhook whose cache keeps nothing (max_entries = 0): every
#               review lists the image's referrers, fetches and verifies its three signatures
#               afresh, and no two reviews in flight share a digest (so none shares another's
#               verification): the cost of an image never seen before, with the registry
#               connections warm, as they are in a running webhook.
#   memory:     MEMORY of reviews of distinct digests (a new digest per request, none of them
#               in the registry: each is looked up and denied) against the cached webhook,
#               16 connections, RSS sampled every 10 s: what never-repeated images leave behind.
# wrk runs on the same cores as the webhook and the registry; its own CPU is part of the
# picture. Results are also written to bench/results/admission-<date>.md (gitignored).
set -euo pipefail

DURATION=${DURATION:-10s}
MEMORY=${MEMORY:-10m}
IMAGES=${IMAGES:-300}
LOG_LEVEL=${LOG_LEVEL:-warn}

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
for tool in wrk curl jq sha256sum; do
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
WEBHOOK_PIDS=()
stop_webhooks() {
    local p
    for p in "${WEBHOOK_PIDS[@]}"; do
        kill "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
}
trap 'stop_webhooks; bench_cleanup' EXIT

start_server berth 0
log "registry on $HOSTPORT"

# IMAGES images sharing one layer and config (distinct manifests: an annotation), each
# signed by three keys under three test CAs (one per role); the first is the cached one
mkimage "$WORK/app" app 1 4096
"$BERTH" copy -q "oci:$WORK/app:app" "$HOSTPORT/bench/app:v1" >/dev/null
DIGEST="sha256:$(cat "$WORK/app/manifest.digest")"
MANIFEST=$WORK/app/blobs/sha256/$(cat "$WORK/app/manifest.digest")
for role in dev ci prod; do
    "$BERTH" --log-level "$LOG_LEVEL" cert generate-test "$role" --ca >/dev/null
done
: >"$WORK/digests"
for ((i = 0; i < IMAGES; i++)); do
    jq -c --arg n "$i" '. + {annotations: {"bench.berth.dev/n": $n}}' "$MANIFEST" >"$WORK/m.json"
    d="sha256:$(sha256sum "$WORK/m.json" | cut -d' ' -f1)"
    curl -sf -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
        --data-binary "@$WORK/m.json" "$BASE/v2/bench/app/manifests/$d" >/dev/null
    for role in dev ci prod; do
        "$BERTH" --log-level "$LOG_LEVEL" sign --plain-http --key "$role" "$HOSTPORT/bench/app@$d" >/dev/null 2>&1
    done
    echo "$d" >>"$WORK/digests"
done
for role in dev ci prod; do
    "$BERTH" --log-level "$LOG_LEVEL" sign --plain-http --key "$role" "$HOSTPORT/bench/app@$DIGEST" >/dev/null 2>&1
done
log "$((IMAGES + 1)) images in $HOSTPORT/bench/app, each signed by dev, ci and prod"

jq -n --arg scope "$HOSTPORT/bench/app" '{
  version: "berth.policy/v1",
  trustStores: ["ca:dev", "ca:ci", "ca:prod"],
  roles: {
    dev: {trustedIdentities: ["x509.subject: CN=dev, O=Notary, L=Seattle, ST=WA, C=US"]},
    ci: {trustedIdentities: ["x509.subject: CN=ci, O=Notary, L=Seattle, ST=WA, C=US"]},
    prod: {trustedIdentities: ["x509.subject: CN=prod, O=Notary, L=Seattle, ST=WA, C=US"]}
  },
  rules: [{
    name: "production",
    registryScopes: [$scope],
    namespaces: ["prod"],
    signatureVerification: {level: "strict"},
    trustStores: ["ca:dev", "ca:ci", "ca:prod"],
    requirement: {allOf: ["dev", "ci", "prod"]}
  }]
}' >"$WORK/policy.json"
"$BERTH" policy check "$WORK/policy.json" >/dev/null

"$BERTH" --log-level "$LOG_LEVEL" admission certs --out "$WORK/certs" --dns 127.0.0.1 >/dev/null

start_webhook() { # name cache-max-entries -> sets WEBHOOK_URL
    local name=$1 entries=$2 port i
    port=$(free_port)
    {
        echo "listen = \"127.0.0.1:$port\""
        echo "tls_cert = \"$WORK/certs/tls.crt\""
        echo "tls_key = \"$WORK/certs/tls.key\""
        echo "policy = \"$WORK/policy.json\""
        echo "trust_store = \"$XDG_CONFIG_HOME/berth/truststore\""
        echo "[cache]"
        echo "ttl = \"10m\""
        echo "max_entries = $entries"
        echo "[registry]"
        echo "plain_http = [\"$HOSTPORT\"]"
    } >"$WORK/$name.toml"
    "$BERTH" --log-level "$LOG_LEVEL" admission serve --config "$WORK/$name.toml" \
        >"$WORK/$name.log" 2>&1 &
    WEBHOOK_PIDS+=("$!")
    WEBHOOK_URL=https://127.0.0.1:$port
    for ((i = 0; i < 100; i++)); do
        curl -sfk "$WEBHOOK_URL/readyz" >/dev/null 2>&1 && return
        sleep 0.1
    done
    echo "error: the webhook $name did not become ready; its log:" >&2
    cat "$WORK/$name.log" >&2
    exit 1
}

# the AdmissionReview of a Pod in namespace prod running IMAGE, as the API server sends it
review() { # image
    jq -cn --arg image "$1" '{
      apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview",
      request: {
        uid: "705ab4f5-6393-11e8-b7cc-42010a800002",
        kind: {group: "", version: "v1", kind: "Pod"},
        resource: {group: "", version: "v1", resource: "pods"},
        requestKind: {group: "", version: "v1", kind: "Pod"},
        requestResource: {group: "", version: "v1", resource: "pods"},
        name: "web", namespace: "prod", operation: "CREATE",
        userInfo: {username: "admin", groups: ["system:authenticated"]},
        object: {apiVersion: "v1", kind: "Pod",
                 metadata: {name: "web", namespace: "prod"},
                 spec: {containers: [{name: "web", image: $image}]}},
        oldObject: null, dryRun: false,
        options: {apiVersion: "meta.k8s.io/v1", kind: "CreateOptions"}
      }}'
}
review "$HOSTPORT/bench/app@$DIGEST" >"$WORK/review.json"
while read -r d; do review "$HOSTPORT/bench/app@$d"; done <"$WORK/digests" >"$WORK/reviews.jsonl"

# wrk scripts: the same review every time; the IMAGES reviews in turn (each thread from its
# own starting point); a new digest in every review
printf '%s\n' \
    "local f = assert(io.open(\"$WORK/review.json\", \"r\"))" \
    'wrk.method = "POST"' \
    'wrk.body = f:read("*a")' \
    'f:close()' \
    'wrk.headers["Content-Type"] = "application/json"' >"$WORK/same.lua"
printf '%s\n' \
    "local f = assert(io.open(\"$WORK/review.json\", \"r\"))" \
    'local template = f:read("*a")' \
    'f:close()' \
    'local n, counter = 0, 1' \
    'function setup(thread) thread:set("tid", counter); counter = counter + 1 end' \
    'function request()' \
    '    n = n + 1' \
    '    local hex = string.format("%08x%056x", tid or 0, n)' \
    '    local body = template:gsub("sha256:%x+", "sha256:" .. hex, 1)' \
    '    return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)' \
    'end' >"$WORK/distinct.lua"
printf '%s\n' \
    'local bodies = {}' \
    "for line in io.lines(\"$WORK/reviews.jsonl\") do bodies[#bodies + 1] = line end" \
    'local n, counter = 0, 0' \
    'function setup(thread) thread:set("tid", counter); counter = counter + 1 end' \
    'function request()' \
    '    n = n + 1' \
    '    local i = ((tid or 0) * math.floor(#bodies / 2) + n) % #bodies + 1' \
    '    return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, bodies[i])' \
    'end' >"$WORK/images.lua"

check_allowed() { # url
    local allowed
    allowed=$(curl -sk -H 'Content-Type: application/json' --data-binary "@$WORK/review.json" \
        "$1/validate?timeout=10s" | jq -r .response.allowed)
    if [ "$allowed" != true ]; then
        echo "error: the review was not admitted by $1 (allowed=$allowed); the logs:" >&2
        cat "$WORK"/*.log >&2
        exit 1
    fi
}

RESULTS=bench/results/admission-$(date +%Y%m%d-%H%M%S).md
mkdir -p bench/results
{
    echo "# bench/admission.sh $(date -u +%Y-%m-%dT%H:%MZ)"
    echo
    echo "$(nproc) cores; $DURATION per run; first-seen over $IMAGES images"
    echo
    echo "| scenario | connections | requests/s | p50 | p90 | p99 | non-2xx |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
} >"$RESULTS"

run_wrk() { # scenario url lua connections
    local out rps p50 p90 p99 errors threads=2
    [ "$4" -lt 2 ] && threads=1
    out=$(wrk -t "$threads" -c "$4" -d "$DURATION" --latency -s "$3" "$2/validate?timeout=10s")
    rps=$(awk '/^Requests\/sec/ { print $2 }' <<<"$out")
    p50=$(awk '$1 == "50%" { print $2 }' <<<"$out")
    p90=$(awk '$1 == "90%" { print $2 }' <<<"$out")
    p99=$(awk '$1 == "99%" { print $2 }' <<<"$out")
    errors=$(awk '/Non-2xx/ { print $NF }' <<<"$out")
    printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$1" "$4" "$rps" "$p50" "$p90" "$p99" "${errors:-0}" |
        tee -a "$RESULTS"
}

start_webhook cached 100000
CACHED=$WEBHOOK_URL
check_allowed "$CACHED"
start_webhook uncached 0
UNCACHED=$WEBHOOK_URL
check_allowed "$UNCACHED"
log "webhooks: cached $CACHED, first-seen $UNCACHED"

# interleaved, order alternating per connection count (ABBA)
for c in 1 16 64; do
    if [ "$c" = 16 ]; then
        run_wrk first-seen "$UNCACHED" "$WORK/images.lua" "$c"
        run_wrk cached "$CACHED" "$WORK/same.lua" "$c"
    else
        run_wrk cached "$CACHED" "$WORK/same.lua" "$c"
        run_wrk first-seen "$UNCACHED" "$WORK/images.lua" "$c"
    fi
done

# every first-seen review must have been admitted (a denial is as fast as a cache hit)
denied=$(curl -sk "$UNCACHED/metrics" | awk '/^berth_admission_requests_total/ && /denied/ { s += $2 } END { print s + 0 }')
echo "first-seen webhook: $denied denied reviews (must be 0)" | tee -a "$RESULTS"

# memory: distinct digests for MEMORY against the cached webhook
pid=${WEBHOOK_PIDS[0]}
rss() { awk '/^VmRSS/ { print $2 }' "/proc/$pid/status"; }
start_rss=$(rss)
samples=$start_rss
wrk -t 2 -c 16 -d "$MEMORY" -s "$WORK/distinct.lua" "$CACHED/validate?timeout=10s" \
    >"$WORK/memory.wrk" &
wrk_pid=$!
while kill -0 "$wrk_pid" 2>/dev/null; do
    sleep 10
    samples="$samples $(rss)"
done
wait "$wrk_pid" || true
requests=$(awk '/requests in/ { print $1 }' "$WORK/memory.wrk")
max_rss=$(tr ' ' '\n' <<<"$samples" | sort -n | tail -1)
end_rss=$(rss)
{
    echo
    echo "memory: $MEMORY of distinct digests, $requests reviews at 16 connections;"
    echo "RSS at start $start_rss KiB, max $max_rss KiB, at the end $end_rss KiB"
    echo "samples (KiB, every 10 s): $samples"
} | tee -a "$RESULTS"
log "results in $RESULTS"
