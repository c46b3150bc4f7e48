#!/usr/bin/env bash
# Client benchmark: `berth copy`/`berth pull` against `skopeo copy` doing the same job, side by
# side in one run, interleaved in ABBA order (berth, skopeo, skopeo, berth, …; for each job the
# first client alternates from round to round), against the same registry:
# berth's and Debian's docker-registry (CNCF distribution 2.8). Run by hand; never in CI.
#
#   bench/client.sh                 ROUNDS=3
#   ROUNDS=1 bench/client.sh        a quick smoke run
#
# Jobs, per registry and client (each push goes to a freshly started, empty registry so that
# nothing is skipped or mounted from an earlier run):
#   push big / many : oci: layout -> registry
#   pull big / many : registry -> oci: layout (the same job for both clients);
#                     also `berth pull` into berth's local store (reported on its own row)
# Images: "big" = BIG_LAYERS x BIG_MIB MiB incompressible layers, "many" = SMALL_LAYERS x
# SMALL_KIB KiB. Results: medians, ratio skopeo time / berth time (higher = berth faster),
# also written to bench/results/client-<date>.md (gitignored).
set -euo pipefail

ROUNDS=${ROUNDS:-3}
BIG_LAYERS=${BIG_LAYERS:-4}
BIG_MIB=${BIG_MIB:-64}
SMALL_LAYERS=${SMALL_LAYERS:-200}
SMALL_KIB=${SMALL_KIB:-4}
LOG_LEVEL=${LOG_LEVEL:-warn}

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
for tool in skopeo curl jq docker-registry gzip sha256sum; do
    command -v "$tool" >/dev/null 2>&1 || {
        echo "error: $tool is not installed; hint: scripts/test installs the test tools" >&2
        exit 1
    }
done

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
bench_setup berth-client-bench

berth_release_bin

log "generating fixtures in $WORK"
mkimage "$WORK/big" v1 "$BIG_LAYERS" $((BIG_MIB * 1024 * 1024))
mkimage "$WORK/many" v1 "$SMALL_LAYERS" $((SMALL_KIB * 1024))
declare -A BYTES=([big]=$(layout_bytes "$WORK/big") [many]=$(layout_bytes "$WORK/many"))

# skopeo's blob-info cache could turn a push into a mount, but every push goes to a freshly
# started registry on a new port, where no earlier location applies.
skopeo_run() { # args...
    skopeo "$@" >/dev/null
}
berth_run() { # args...
    XDG_DATA_HOME=$WORK/berth-xdg "$BERTH" --log-level warn "$@" >/dev/null 2>&1
}

declare -A RES=()
record() { RES["$1|$2"]+="$3 "; } # key|client value

timed() { # key client command...
    local key=$1 client=$2 t
    shift 2
    t=$(now)
    "$@"
    record "$key" "$client" "$(elapsed "$t")"
}

for round in $(seq 1 "$ROUNDS"); do
    job=0
    for server in berth docker-registry; do
        for image in big many; do
            job=$((job + 1))
            # shellcheck disable=SC2046 # two words on purpose
            for client in $(abba $((round + job)) berth skopeo); do
                # push into an empty registry
                start_server "$server" "$round-$image-$client-push"
                case $client in
                berth) timed "$server push $image" berth berth_run copy "oci:$WORK/$image:v1" "$HOSTPORT/bench/$image:v1" ;;
                skopeo) timed "$server push $image" skopeo skopeo_run copy --dest-tls-verify=false "oci:$WORK/$image:v1" "docker://$HOSTPORT/bench/$image:v1" ;;
                esac
                # pull what was just pushed into a new layout
                out=$WORK/out-$client
                rm -rf "$out" "$WORK/berth-xdg"
                case $client in
                berth)
                    timed "$server pull $image" berth berth_run copy "$HOSTPORT/bench/$image:v1" "oci:$out:v1"
                    timed "$server pull $image (into berth's store)" berth berth_run pull "$HOSTPORT/bench/$image:v1"
                    ;;
                skopeo) timed "$server pull $image" skopeo skopeo_run copy --src-tls-verify=false "docker://$HOSTPORT/bench/$image:v1" "oci:$out:v1" ;;
                esac
                rm -rf "$out" "$WORK/berth-xdg"
                stop_server
            done
            log "round $round: $server $image done"
        done
    done
done

DATE=$(date +%Y-%m-%d)
mkdir -p "$ROOT/bench/results"
REPORT=$ROOT/bench/results/client-$DATE.md
{
    echo "# berth client vs skopeo — $DATE"
    echo
    echo "- berth $("$BERTH" --version | awk '{print $2}') (release), $(skopeo --version)"
    echo "- registries: berth registry serve, docker-registry $(dpkg-query -W -f='${Version}' docker-registry 2>/dev/null)"
    echo "- ROUNDS=$ROUNDS interleaved (ABBA); big = $BIG_LAYERS x $BIG_MIB MiB, many = $SMALL_LAYERS x $SMALL_KIB KiB; machine: $(nproc) CPUs, clients and server share it"
    echo
    echo "Medians in seconds; speed-up = skopeo / berth."
    echo
    echo "| job | bytes | skopeo s | berth s | berth MiB/s | speed-up |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: |"
    for server in berth docker-registry; do
        for job in "push big" "pull big" "push many" "pull many"; do
            key="$server $job"
            image=${job#* }
            s=$(echo "${RES["$key|skopeo"]}" | median)
            b=$(echo "${RES["$key|berth"]}" | median)
            printf '| %s | %s | %s | %s | %s | %s |\n' "$key" "${BYTES[$image]}" "$s" "$b" "$(mibps "${BYTES[$image]}" "$b")" \
                "$(awk -v s="$s" -v b="$b" 'BEGIN { printf "%.2f", s / b }')"
        done
        for image in big many; do
            key="$server pull $image (into berth's store)"
            b=$(echo "${RES["$key|berth"]}" | median)
            printf '| %s | %s | – | %s | %s | – |\n' "$key" "${BYTES[$image]}" "$b" "$(mibps "${BYTES[$image]}" "$b")"
        done
    done
    echo
    echo "Per-run values, in run order per client:"
    for k in "${!RES[@]}"; do echo "- $k: ${RES[$k]}"; done | sort
} >"$REPORT"
cat "$REPORT"
log "results written to $REPORT"
