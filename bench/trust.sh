#!/usr/bin/env bash
# Trust benchmark: `berth sign` and `berth verify` against notation v1.3.2 doing the same job,
# against one local `berth registry serve`, interleaved ABBA (berth notation, notation berth,
# …). Run by hand; never in CI.
#
#   bench/trust.sh                 ROUNDS=20
#   ROUNDS=4 bench/trust.sh        a quick smoke run
#
# Both tools sign with the same key: notation's RSA-2048 test key (`notation cert
# generate-test`), imported into berth's key store, so both make PS256 JWS envelopes.
#   sign:   one signature of bench:v1 pushed through the referrers API (notation with
#           --force-referrers-tag=false, as berth does against a registry that has the API)
#   verify: bench:three, which has exactly 3 signatures (notation JWS, notation COSE,
#           berth JWS), by digest, with notation's trust policy and trust store (berth reads
#           notation's configuration when it has none of its own). notation stops at the
#           first signature that passes; berth evaluates and reports all three.
# Each time is the whole command, end to end: process start, registry round trips, crypto.
# berth runs with --plain-http, the match of notation's --insecure-registry; berth verify is
# also timed without it (on a loopback registry berth then tries HTTPS first and falls back).
# Results: medians in ms, ratios notation time / berth time (higher = berth faster), also
# written to bench/results/trust-<date>.md (gitignored).
set -euo pipefail

ROUNDS=${ROUNDS:-20}
LOG_LEVEL=${LOG_LEVEL:-warn}
NOTATION=${BERTH_NOTATION:-notation}

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
for tool in "$NOTATION" curl jq sha256sum; do
    command -v "$tool" >/dev/null 2>&1 || {
        echo "error: $tool is not installed (notation: scripts/test's install_notation)" >&2
        exit 1
    }
done
"$NOTATION" version | grep -q 'v1.3.2' || echo "warning: notation is not v1.3.2" >&2
# shellcheck source=bench/lib.sh
source bench/lib.sh
bench_setup berth-trust-bench
berth_release_bin

# both tools' configuration in the work directory (notation: $XDG_CONFIG_HOME/notation;
# berth: $XDG_CONFIG_HOME/berth for its keys)
export XDG_CONFIG_HOME=$WORK/xdg DOCKER_CONFIG=$WORK/xdg/docker
mkdir -p "$XDG_CONFIG_HOME"

start_server berth 0
log "registry on $HOSTPORT"

push_image() { # tag seed-dir -> prints digest
    mkimage "$WORK/$1" "$1" 1 4096
    "$BERTH" copy -q "oci:$WORK/$1:$1" "$HOSTPORT/bench:$1" >/dev/null
    echo "sha256:$(cat "$WORK/$1/manifest.digest")"
}
V1=$(push_image v1)
THREE=$(push_image three)

"$NOTATION" cert generate-test bench.example >/dev/null
"$BERTH" key import bench --key "$XDG_CONFIG_HOME/notation/localkeys/bench.example.key" \
    --cert "$XDG_CONFIG_HOME/notation/localkeys/bench.example.crt" --default >/dev/null
cat >"$XDG_CONFIG_HOME/notation/trustpolicy.json" <<'EOF'
{"version": "1.0", "trustPolicies": [{"name": "bench", "registryScopes": ["*"],
  "signatureVerification": {"level": "strict"}, "trustStores": ["ca:bench.example"],
  "trustedIdentities": ["x509.subject: C=US, ST=WA, L=Seattle, O=Notary, CN=bench.example"]}]}
EOF

nsign() { "$NOTATION" sign --insecure-registry --force-referrers-tag=false --key bench.example "$@" >/dev/null 2>&1; }
nsign "$HOSTPORT/bench@$THREE"
nsign --signature-format cose "$HOSTPORT/bench@$THREE"
"$BERTH" sign "$HOSTPORT/bench@$THREE" >/dev/null 2>&1
n=$(curl -sf "$BASE/v2/bench/referrers/$THREE" | jq '.manifests | length')
[ "$n" = 3 ] || {
    echo "error: bench:three has $n signatures, not 3" >&2
    exit 1
}
# both must pass before anything is timed
"$BERTH" verify "$HOSTPORT/bench@$THREE" >"$WORK/berth-verify.txt"
"$NOTATION" verify --insecure-registry "$HOSTPORT/bench@$THREE" >/dev/null
grep -c '^  result: passed' "$WORK/berth-verify.txt" | grep -qx 3 || {
    echo "error: berth did not pass all three signatures:" >&2
    cat "$WORK/berth-verify.txt" >&2
    exit 1
}

declare -A RES
job() { # job contender
    local t
    t=$(now)
    case "$1|$2" in
    sign\|berth) "$BERTH" sign --plain-http "$HOSTPORT/bench@$V1" >/dev/null 2>&1 ;;
    sign\|notation) nsign "$HOSTPORT/bench@$V1" ;;
    verify\|berth) "$BERTH" verify --plain-http "$HOSTPORT/bench@$THREE" >/dev/null ;;
    verify-auto\|berth) "$BERTH" verify "$HOSTPORT/bench@$THREE" >/dev/null ;;
    verify\|notation) "$NOTATION" verify --insecure-registry "$HOSTPORT/bench@$THREE" >/dev/null ;;
    esac
    RES["$1|$2"]+="$(awk -v s="$(elapsed "$t")" 'BEGIN { printf "%.1f", s * 1000 }') "
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
for ((round = 0; round < ROUNDS; round++)); do
    log "round $round"
    for c in $(abba "$round" berth notation); do job sign "$c"; done
    for c in $(abba "$((round + 1))" berth notation); do job verify "$c"; done
    job verify-auto berth
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
SIGS=$(curl -sf "$BASE/v2/bench/referrers/$V1" | jq '.manifests | length')

mkdir -p bench/results
out=bench/results/trust-$(date +%Y%m%d-%H%M%S).md
{
    echo "- ROUNDS=$ROUNDS, ABBA interleaved; berth $("$BERTH" --version | cut -d' ' -f2) ($BERTH) vs $("$NOTATION" version | awk '/^Version/ {print $2}'); one local berth registry; machine: $(nproc) CPUs, shared; load average before $LOAD_BEFORE, after $LOAD_AFTER"
    echo "- sign: RSA-2048 PS256 JWS, the same key in both tools; $SIGS signatures pushed to bench:v1 in all"
    echo "- verify: bench:three with 3 signatures, strict policy; notation stops at the first that passes, berth verifies all 3"
    echo
    echo "| job | berth ms (median) | notation ms (median) | notation/berth |"
    echo "|---|---|---|---|"
    for j in sign verify; do
        b=$(echo "${RES["$j|berth"]}" | median)
        nn=$(echo "${RES["$j|notation"]}" | median)
        echo "| $j | $b | $nn | $(awk -v a="$nn" -v b="$b" 'BEGIN{printf "%.2f", a/b}') |"
    done
    echo "| verify without --plain-http (berth probes HTTPS first on loopback and loads the system roots) | $(echo "${RES["verify-auto|berth"]}" | median) | | |"
    echo
    for key in "${!RES[@]}"; do echo "- $key: ${RES[$key]}"; done | sort
} | tee "$out"
