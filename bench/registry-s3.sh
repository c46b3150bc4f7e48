#!/usr/bin/env bash
# Registries on S3-compatible storage, side by side on the same S3 server: (a) `berth registry
# serve` with one replica, (b) two berth replicas on one bucket, (c) Debian's docker-registry
# (distribution 2.8) with its own S3 driver. Every contender is reached through nginx
# (round-robin, HTTP/1.1, no buffering: tests/support/src/nginx.rs's configuration), in front
# of one replica for (a) and (c) and of two for (b), so that all go through the same proxy
# and (a) vs (b) is the replica scaling. Run by hand; never in CI.
#
#   bench/registry-s3.sh                                   ROUNDS=3, everything on moto
#   CONTENDERS=docker-registry ROUNDS=1 bench/registry-s3.sh    docker-registry only
#   S3_SERVER=s3s-fs CONTENDERS="berth-1 berth-2" bench/registry-s3.sh
#
# Parameters (environment):
#   S3_SERVER=moto    moto (moto_server from $BERTH_MOTO_SERVER or PATH), s3s-fs, or
#                     seaweedfs. The default is moto because docker-registry 2.8's S3 driver
#                     cannot push to s3s-fs 0.14.1 (it lists multipart uploads to resume each
#                     chunked upload; s3s-fs answers ListMultipartUploads with 501): on s3s-fs
#                     only the berth contenders run. seaweedfs is `weed mini` (master,
#                     volume, filer and S3 gateway in one multi-threaded Go process; files
#                     under a temporary directory), from $BERTH_WEED or `weed` on PATH. It
#                     is not in scripts/test: its go.mod has replace directives, so `go
#                     install` refuses it; build it by hand from the Go module proxy:
#                       d=$(go mod download -json github.com/seaweedfs/seaweedfs@v0.0.0-20261109003541-7506e5f91cd6 | jq -r .Dir)
#                       cp -r "$d" /tmp/weed-src && chmod -R u+w /tmp/weed-src
#                       (cd /tmp/weed-src && go build -o /usr/local/bin/weed ./weed)
#   CONTENDERS="docker-registry berth-1 berth-2"   which to run; berth's run once its S3
#                     driver exists (`[storage.s3]` in its configuration)
#   ROUNDS=3          rounds; each round starts every contender fresh, on a fresh S3 server
#   DURATION=10       seconds per wrk run; CONNECTIONS=16 (-c); WRK_THREADS=2 (-t)
#   BIG_LAYERS=4 BIG_MIB=64        the large image: incompressible layers
#   SMALL_LAYERS=200 SMALL_KIB=4   the many-small-layers image
#   LOG_LEVEL=warn    the registries' log level
#   PROXY_BUFFER=256k nginx's proxy_buffer_size (and 4 proxy_buffers of it). With
#                     proxy_buffering off nginx relays a response through this one buffer;
#                     at its default (4k) the proxy itself bounds every contender's pulls at
#                     about 750-950 MiB/s here, so the bench raises it for all of them
#   BERTH_BIN=…       a berth binary to use instead of building target/release/berth
#   BERTH_DISK_TIER=… berth's [storage.cache] disk_max_bytes (0: no disk tier); unset: its
#                     default (1 GiB)
#   BERTH_READ_AHEAD=… berth's [storage.s3] read_ahead (0: one GET per blob, as
#                     docker-registry reads); unset: its default (4)
#   BERTH_READ_AHEAD_BELOW=… berth's [storage.s3] read_ahead_below in MiB/s (0: every
#                     large read ranged, untimed); unset: its default (256)
#   S3_CONN_RATE=…    cap every TCP connection to or from the S3 server at this rate (a tc
#                     rate: 720mbit is 90 MB/s), as a real S3 service caps one connection
#                     ("there's a cap on the throughput of single S3 connection, the only way
#                     to go faster is multiple parallel connections": awslabs/aws-c-s3's
#                     README), where on one machine the server's loopback has no cap at all.
#                     The script then re-runs itself in a network namespace of its own (as
#                     root: unshare -n) and shapes that namespace's loopback with tc: HTB, one
#                     class of this rate per value of the low byte of the client's port,
#                     chosen by a u32 hash filter on the S3 server's port. Every contender
#                     gets the same caps; traffic between clients, nginx and registries has
#                     none
#   REGISTRY_CPU=…    cap every registry process (each berth replica, docker-registry) at
#                     this many cores (0.1: a tenth), each in a cgroup of its own with a CFS
#                     quota (10 ms period), so that the registries, not the S3 server, wrk
#                     or nginx sharing the cores, bound the manifest GETs: what one and two
#                     replicas serve is then the replica scaling the issue asks for. The
#                     cgroups are removed at the end
#
# Measures per contender: skopeo push and pull (oci: layout <-> docker://) of the large and
# the many-layer image, in MiB/s; manifest GET by tag, requests/s and p50/p99 with wrk
# through the proxy; and, as the ceiling every contender is under, the S3 server's own GET
# of a 4 KiB object (a URL presigned by boto3 from moto's virtualenv, wrk straight at the
# server). On moto, which logs every request, also the S3 requests each push and pull made
# and the S3 requests per manifest GET: the figure that carries over to a real S3 service,
# where each request costs a round trip and is billed. During the manifest GETs, also the CPU
# the S3 server and the registries used (in cores) and how busy the whole machine was: whether
# a second replica had any CPU left to use. Contenders run in an order that turns
# round each round (A B C, C B A, …: ABBA for three). Prints medians, the ratios berth/docker-registry and berth-2/berth-1
# (the issue's targets: >= 2x docker-registry's push and pull, near-linear manifest GET
# scaling — the load generator shares the machine), and writes them to
# bench/results/<date>-s3.md (gitignored).
set -euo pipefail

S3_SERVER=${S3_SERVER:-moto}
CONTENDERS=${CONTENDERS:-docker-registry berth-1 berth-2}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-16}
WRK_THREADS=${WRK_THREADS:-2}
BIG_LAYERS=${BIG_LAYERS:-4}
BIG_MIB=${BIG_MIB:-64}
SMALL_LAYERS=${SMALL_LAYERS:-200}
SMALL_KIB=${SMALL_KIB:-4}
LOG_LEVEL=${LOG_LEVEL:-warn}
PROXY_BUFFER=${PROXY_BUFFER:-256k}

BERTH_READ_AHEAD=${BERTH_READ_AHEAD:-}
BERTH_READ_AHEAD_BELOW=${BERTH_READ_AHEAD_BELOW:-}
S3_CONN_RATE=${S3_CONN_RATE:-}
REGISTRY_CPU=${REGISTRY_CPU:-}
CPU_CGROUPS=()

S3_ACCESS=bench-access
S3_SECRET=bench-secret-0123456789
S3_REGION=us-east-1
S3_BUCKET=registry

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

if [ -n "$S3_CONN_RATE" ] && [ -z "${BERTH_BENCH_NETNS:-}" ]; then
    for tool in unshare tc ip; do
        command -v "$tool" >/dev/null 2>&1 || {
            echo "error: S3_CONN_RATE needs $tool (util-linux, iproute2)" >&2
            exit 1
        }
    done
    if [ "$(id -u)" != 0 ]; then
        echo "error: S3_CONN_RATE shapes a network namespace's loopback: run as root" >&2
        exit 1
    fi
    exec unshare -n env BERTH_BENCH_NETNS=1 "$0" "$@"
fi
if [ -n "${BERTH_BENCH_NETNS:-}" ]; then
    ip link set lo up
fi

for tool in skopeo wrk curl jq nginx gzip sha256sum; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "error: $tool is not installed" >&2
        echo "hint: apt-get install skopeo wrk curl jq nginx-light (scripts/test installs them)" >&2
        exit 1
    fi
done
case $S3_SERVER in
moto)
    MOTO=${BERTH_MOTO_SERVER:-$(command -v moto_server || true)}
    if [ -z "$MOTO" ] || [ ! -x "$MOTO" ]; then
        echo "error: moto's server is missing (BERTH_MOTO_SERVER unset and no moto_server on PATH)" >&2
        echo "hint: scripts/test installs it into /opt/berth-test/moto; BERTH_MOTO_SERVER=/opt/berth-test/moto/bin/moto_server" >&2
        exit 1
    fi
    ;;
s3s-fs)
    if ! command -v s3s-fs >/dev/null 2>&1; then
        echo "error: s3s-fs is not installed" >&2
        echo "hint: cargo install s3s-fs@0.14.1 --features binary --locked (scripts/test does)" >&2
        exit 1
    fi
    if [[ " $CONTENDERS " == *" docker-registry "* ]]; then
        echo "error: docker-registry 2.8's S3 driver cannot push to s3s-fs 0.14.1 (ListMultipartUploads: 501)" >&2
        echo "hint: CONTENDERS=\"berth-1 berth-2\" S3_SERVER=s3s-fs, or S3_SERVER=moto for the comparison" >&2
        exit 1
    fi
    ;;
seaweedfs)
    WEED=${BERTH_WEED:-$(command -v weed || true)}
    if [ -z "$WEED" ] || [ ! -x "$WEED" ]; then
        echo "error: SeaweedFS's weed is missing (BERTH_WEED unset and no weed on PATH)" >&2
        echo "hint: build it from the Go module proxy as this script's header says" >&2
        exit 1
    fi
    ;;
*)
    echo "error: S3_SERVER must be moto, s3s-fs or seaweedfs, not '$S3_SERVER'" >&2
    exit 1
    ;;
esac
# boto3 (installed with moto[server]) presigns the S3 server's own GET for its ceiling
BOTO_PY=""
for m in "${BERTH_MOTO_SERVER:-}" /opt/berth-test/moto/bin/moto_server; do
    if [ -n "$m" ] && [ -x "$(dirname "$m")/python3" ] && "$(dirname "$m")/python3" -c 'import boto3' 2>/dev/null; then
        BOTO_PY=$(dirname "$m")/python3
        break
    fi
done
[ -z "$BOTO_PY" ] && log "no boto3 (moto's virtualenv): the S3 server's own GET ceiling is not measured"

for c in $CONTENDERS; do
    case $c in
    docker-registry)
        command -v docker-registry >/dev/null 2>&1 || {
            echo "error: docker-registry is not installed (apt-get install docker-registry)" >&2
            exit 1
        }
        ;;
    berth-1 | berth-2) ;;
    *)
        echo "error: unknown contender '$c' (docker-registry, berth-1, berth-2)" >&2
        exit 1
        ;;
    esac
done

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
bench_setup berth-bench-s3

# Every process this script starts (S3 server, registries, nginx), killed by PID on exit.
PIDS=()
kill_pids() {
    local p
    for p in "${PIDS[@]}"; do
        kill "$p" 2>/dev/null || true
    done
    for p in "${PIDS[@]}"; do
        wait "$p" 2>/dev/null || true
    done
    PIDS=()
}
# REGISTRY_CPU: move the registry `pid` into a cgroup of its own whose CFS quota is that many
# cores (cgroup v2's cpu.max where /sys/fs/cgroup is v2, else the v1 cpu hierarchy).
cap_cpu() { # pid
    [ -n "$REGISTRY_CPU" ] || return 0
    local pid=$1 dir quota period=10000
    quota=$(awk -v c="$REGISTRY_CPU" -v p=$period 'BEGIN { printf "%d", c * p }')
    if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
        dir=/sys/fs/cgroup/berth-bench-$pid
        mkdir "$dir"
        echo "$quota $period" >"$dir/cpu.max"
    else
        dir=/sys/fs/cgroup/cpu/berth-bench-$pid
        mkdir "$dir"
        echo "$period" >"$dir/cpu.cfs_period_us"
        echo "$quota" >"$dir/cpu.cfs_quota_us"
    fi
    CPU_CGROUPS+=("$dir")
    echo "$pid" >"$dir/cgroup.procs"
}
remove_cpu_cgroups() {
    local d
    for d in "${CPU_CGROUPS[@]}"; do
        rmdir "$d" 2>/dev/null || true
    done
    CPU_CGROUPS=()
}
# bench_cleanup exits with the status it is entered with: keep the script's
trap 'status=$?; kill_pids; remove_cpu_cgroups; (exit "$status"); bench_cleanup' EXIT

if [[ " $CONTENDERS " == *" berth"* ]]; then
    berth_release_bin
fi

registry_fixtures

# ---------------------------------------------------------------- servers

wait_port() { # port pid
    for _ in $(seq 1 300); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        if ! kill -0 "$2" 2>/dev/null; then return 1; fi
        sleep 0.1
    done
    return 1
}

# After starting `what` in the background on `port`: wait until it listens. If it does not,
# kill it; when its log says the port was taken meanwhile (free_port's probe races other
# processes; SeaweedFS's own connections between its parts may take one of its ports first:
# "Port allocation failed"), return 1 so that the caller tries other ports; otherwise print
# the log and exit.
started() { # what port log [hint]
    local pid=${PIDS[-1]}
    if wait_port "$2" "$pid"; then return 0; fi
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    unset 'PIDS[-1]'
    if grep -qiE 'address already in use|port allocation failed' "$3" && [ "${START_ATTEMPT:-0}" -lt 5 ]; then
        START_ATTEMPT=$((${START_ATTEMPT:-0} + 1))
        return 1
    fi
    echo "error: $1 did not start; its log:" >&2
    cat "$3" >&2
    [ -n "${4:-}" ] && echo "hint: $4" >&2
    exit 1
}

# Run a start_* function until it starts on a free port (a few tries).
start() { # function args...
    START_ATTEMPT=0
    until "$@"; do :; done
}

# curl 7.88 signs with --aws-sigv4 but sends no x-amz-content-sha256 (s3s-fs requires it)
EMPTY_SHA256=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855

# S3_CONN_RATE: every connection to or from the S3 server on `port` capped at that rate
# (see the header); the loopback's earlier shaping, for an earlier server, is replaced.
shape_s3_port() { # port
    local port=$1 batch i
    batch=$(mktemp)
    {
        echo "qdisc add dev lo root handle 1: htb default 1 r2q 10000"
        echo "class add dev lo parent 1: classid 1:1 htb rate 100gbit burst 1m"
        for i in $(seq 0 255); do
            printf 'class add dev lo parent 1: classid 1:%x htb rate %s ceil %s burst 256k cburst 256k\n' \
                $((0x100 + i)) "$S3_CONN_RATE" "$S3_CONN_RATE"
        done
        echo "filter add dev lo parent 1:0 prio 1 handle 2: protocol ip u32 divisor 256"
        for i in $(seq 0 255); do
            printf 'filter add dev lo parent 1:0 prio 1 protocol ip u32 ht 2:%x: match u32 0 0 flowid 1:%x\n' \
                "$i" $((0x100 + i))
        done
        # from the server: the client's port is the TCP destination port (bytes 22-23 of
        # an IP packet without options); to it: the source port (bytes 20-21)
        echo "filter add dev lo parent 1:0 prio 1 protocol ip u32 ht 800:: match ip sport $port 0xffff hashkey mask 0x000000ff at 20 link 2:"
        echo "filter add dev lo parent 1:0 prio 1 protocol ip u32 ht 800:: match ip dport $port 0xffff hashkey mask 0x00ff0000 at 20 link 2:"
    } >"$batch"
    tc qdisc del dev lo root 2>/dev/null || true
    if ! tc -batch "$batch" 2>"$batch.err"; then
        grep -v '^Warning' "$batch.err" >&2 || true
        echo "error: could not shape the loopback for S3_CONN_RATE=$S3_CONN_RATE (tc: htb and u32 needed)" >&2
        exit 1
    fi
    rm -f "$batch" "$batch.err"
}

start_s3() { # dir -> sets S3_ENDPOINT
    local dir=$1 port
    port=$(free_port)
    mkdir -p "$dir/root"
    case $S3_SERVER in
    moto) env -u AWS_CA_BUNDLE "$MOTO" -H 127.0.0.1 -p "$port" >"$dir/s3.log" 2>&1 & ;;
    s3s-fs)
        s3s-fs --host 127.0.0.1 --port "$port" --access-key "$S3_ACCESS" --secret-key "$S3_SECRET" \
            "$dir/root" >"$dir/s3.log" 2>&1 &
        ;;
    seaweedfs)
        # every listener on 127.0.0.1 and a free port of its own; no WebDAV, admin UI,
        # Iceberg or Lance endpoints; the bench's credentials as its one identity
        printf '{"identities":[{"name":"bench","credentials":[{"accessKey":"%s","secretKey":"%s"}],"actions":["Admin","Read","Write","List","Tagging"]}]}\n' \
            "$S3_ACCESS" "$S3_SECRET" >"$dir/s3.json"
        local -a ports=()
        local i
        for i in 1 2 3 4 5 6 7 8 9; do ports+=("$(free_port)"); done
        "$WEED" mini -dir="$dir/root" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
            -master.port="${ports[0]}" -master.port.grpc="${ports[1]}" \
            -volume.port="${ports[2]}" -volume.port.grpc="${ports[3]}" \
            -filer.port="${ports[4]}" -filer.port.grpc="${ports[5]}" \
            -s3.port="$port" -s3.port.grpc="${ports[6]}" -s3.port.iceberg=0 -s3.port.lance=0 \
            -admin.ui=false -admin.port="${ports[7]}" -admin.port.grpc="${ports[8]}" -webdav=false \
            -s3.config="$dir/s3.json" >"$dir/s3.log" 2>&1 &
        ;;
    esac
    PIDS+=($!)
    started "$S3_SERVER" "$port" "$dir/s3.log" || return 1
    S3_PID=${PIDS[-1]}
    S3_ENDPOINT=http://127.0.0.1:$port
    if [ -n "$S3_CONN_RATE" ]; then
        shape_s3_port "$port"
    fi
    S3_LOG=$dir/s3.log
    # (set -e does not hold inside `start`'s loop condition: every failure exits by hand)
    # SeaweedFS's gateway listens before its filer is up: a few tries, 10 s at most
    local tries=50 created=""
    while [ "$tries" -gt 0 ]; do
        if curl -sS -f -o /dev/null -X PUT --aws-sigv4 "aws:amz:$S3_REGION:s3" --user "$S3_ACCESS:$S3_SECRET" \
            -H "x-amz-content-sha256:$EMPTY_SHA256" "$S3_ENDPOINT/$S3_BUCKET" 2>/dev/null; then
            created=1
            break
        fi
        tries=$((tries - 1))
        sleep 0.2
    done
    if [ -z "$created" ]; then
        echo "error: $S3_SERVER refused to create the bucket $S3_BUCKET; its log:" >&2
        cat "$dir/s3.log" >&2
        exit 1
    fi
}

# PUT a 4 KiB object into the bucket and print a presigned GET URL for it (boto3)
s3_small_object_url() {
    local hash
    head -c 4096 /dev/urandom >"$WORK/object"
    hash=$(sha256sum "$WORK/object" | cut -d' ' -f1)
    curl -sS -f -o /dev/null -X PUT --aws-sigv4 "aws:amz:$S3_REGION:s3" --user "$S3_ACCESS:$S3_SECRET" \
        -H "x-amz-content-sha256:$hash" -H 'Content-Type: application/octet-stream' \
        --data-binary "@$WORK/object" "$S3_ENDPOINT/$S3_BUCKET/ceiling/object"
    env -u AWS_CA_BUNDLE "$BOTO_PY" - "$S3_ENDPOINT" "$S3_ACCESS" "$S3_SECRET" "$S3_REGION" "$S3_BUCKET" <<'PY'
import sys
import boto3
from botocore.config import Config
endpoint, access, secret, region, bucket = sys.argv[1:6]
c = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=access,
                 aws_secret_access_key=secret, region_name=region,
                 config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
print(c.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "ceiling/object"},
                               ExpiresIn=3600))
PY
}

start_docker_registry() { # dir prefix -> sets UPSTREAM (host:port)
    local dir=$1 prefix=$2 port
    port=$(free_port)
    mkdir -p "$dir"
    : >"$dir/server.log"
    cat >"$dir/config.yml" <<EOF
version: 0.1
log:
  level: $LOG_LEVEL
  accesslog:
    disabled: true
storage:
  s3:
    accesskey: $S3_ACCESS
    secretkey: $S3_SECRET
    region: $S3_REGION
    regionendpoint: $S3_ENDPOINT
    bucket: $S3_BUCKET
    secure: false
    v4auth: true
    forcepathstyle: true
    rootdirectory: /$prefix
  redirect:
    disable: true
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: 127.0.0.1:$port
  secret: bench-replica-secret
health:
  storagedriver:
    enabled: false
EOF
    # AWS_* from the environment would override the configuration (AWS_CA_BUNDLE makes 2.8's
    # S3 session fail outright)
    # shellcheck disable=SC2046 # one word per variable to unset
    env $(env | awk -F= '/^AWS_/ { printf "-u %s ", $1 }') \
        docker-registry serve "$dir/config.yml" >"$dir/server.log" 2>&1 &
    PIDS+=($!)
    started docker-registry "$port" "$dir/server.log" || return 1
    UPSTREAM=127.0.0.1:$port
    REGISTRY_PIDS+=("${PIDS[-1]}")
    cap_cpu "${PIDS[-1]}"
}

# berth's configuration for the bucket (the `[storage.s3]` table of docs/registry.md)
start_berth() { # dir prefix -> sets UPSTREAM (host:port)
    local dir=$1 prefix=$2 port
    port=$(free_port)
    mkdir -p "$dir/data"
    cat >"$dir/config.toml" <<EOF
[storage]
driver = "s3"

[storage.s3]
bucket = "$S3_BUCKET"
region = "$S3_REGION"
endpoint = "$S3_ENDPOINT"
prefix = "$prefix"
path_style = true
allow_http = true
EOF
    if [ -n "$BERTH_READ_AHEAD" ]; then
        printf 'read_ahead = %s\n' "$BERTH_READ_AHEAD" >>"$dir/config.toml"
    fi
    if [ -n "$BERTH_READ_AHEAD_BELOW" ]; then
        printf 'read_ahead_below = %s\n' "$BERTH_READ_AHEAD_BELOW" >>"$dir/config.toml"
    fi
    if [ -n "${BERTH_DISK_TIER:-}" ]; then
        printf '\n[storage.cache]\ndisk_max_bytes = %s\n' "$BERTH_DISK_TIER" >>"$dir/config.toml"
    fi
    # shellcheck disable=SC2046 # one word per variable to unset
    env $(env | awk -F= '/^AWS_/ { printf "-u %s ", $1 }') \
        AWS_ACCESS_KEY_ID="$S3_ACCESS" AWS_SECRET_ACCESS_KEY="$S3_SECRET" AWS_REGION="$S3_REGION" \
        "$BERTH" --log-level "$LOG_LEVEL" registry serve --listen "127.0.0.1:$port" \
        --data "$dir/data" --config "$dir/config.toml" >"$dir/server.log" 2>&1 &
    PIDS+=($!)
    started "berth on S3" "$port" "$dir/server.log" \
        "berth's S3 driver may not be built yet: CONTENDERS=docker-registry runs the rest" || return 1
    UPSTREAM=127.0.0.1:$port
    REGISTRY_PIDS+=("${PIDS[-1]}")
    cap_cpu "${PIDS[-1]}"
}

start_nginx() { # dir upstream... -> sets HOSTPORT, BASE
    local dir=$1 port u servers=""
    shift
    port=$(free_port)
    mkdir -p "$dir/logs" "$dir/temp"
    : >"$dir/logs/error.log"
    for u in "$@"; do servers+="        server $u;"$'\n'; done
    cat >"$dir/nginx.conf" <<EOF
daemon off;
worker_processes 2;
pid $dir/nginx.pid;
user root;
events { worker_connections 4096; }
http {
    client_body_temp_path $dir/temp/client;
    proxy_temp_path $dir/temp/proxy;
    fastcgi_temp_path $dir/temp/fastcgi;
    uwsgi_temp_path $dir/temp/uwsgi;
    scgi_temp_path $dir/temp/scgi;
    access_log off;
    upstream replicas {
$servers        keepalive 64;
    }
    server {
        listen 127.0.0.1:$port;
        client_max_body_size 0;
        proxy_request_buffering off;
        proxy_buffering off;
        proxy_buffer_size $PROXY_BUFFER;
        proxy_buffers 4 $PROXY_BUFFER;
        proxy_busy_buffers_size $PROXY_BUFFER;
        proxy_http_version 1.1;
        proxy_read_timeout 300s;
        location / {
            proxy_pass http://replicas;
            proxy_set_header Host \$http_host;
            proxy_set_header Connection "";
            proxy_redirect off;
        }
    }
}
EOF
    nginx -p "$dir" -e "$dir/logs/error.log" -c "$dir/nginx.conf" &
    PIDS+=($!)
    started nginx "$port" "$dir/logs/error.log" || return 1
    HOSTPORT=127.0.0.1:$port
    BASE=http://$HOSTPORT
    if ! wait_ready "$BASE" "${PIDS[-1]}"; then
        echo "error: $BASE/v2/ does not answer through nginx" >&2
        cat "$dir/logs/error.log" >&2
        exit 1
    fi
}

start_contender() { # name round
    local name=$1 round=$2 dir=$WORK/$1-r$2 a b
    REGISTRY_PIDS=()
    start start_s3 "$dir/s3"
    case $name in
    docker-registry)
        start start_docker_registry "$dir/a" "bench"
        start start_nginx "$dir/nginx" "$UPSTREAM"
        ;;
    berth-1)
        start start_berth "$dir/a" "bench"
        start start_nginx "$dir/nginx" "$UPSTREAM"
        ;;
    berth-2)
        start start_berth "$dir/a" "bench"
        a=$UPSTREAM
        start start_berth "$dir/b" "bench"
        start start_nginx "$dir/nginx" "$a" "$UPSTREAM"
        ;;
    esac
}

# ---------------------------------------------------------------- measurements
declare -A RESULTS # "<contender>|<metric>" -> space-separated values, one per round

record() { # contender metric value
    RESULTS["$1|$2"]+="${RESULTS["$1|$2"]:+ }$3"
}

# The requests the S3 server has answered so far: moto logs one line per request (werkzeug's
# access log, which wraps some request lines — 206 answers, say — in colour escapes, so the
# pattern does not anchor on the quote); s3s-fs logs none, so there this prints nothing and
# no count is recorded.
s3_requests() {
    [ "$S3_SERVER" = moto ] || return 0
    grep -cE '(GET|PUT|POST|HEAD|DELETE) /[^ ]* HTTP/1\.[01]' "$S3_LOG" || true
}

HZ=$(getconf CLK_TCK)
# CPU time (clock ticks) the processes $@ have used so far
cpu_ticks() {
    local p t=0
    for p in "$@"; do
        t=$((t + $(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null || echo 0)))
    done
    echo "$t"
}
# "busy total" clock ticks of the whole machine so far (/proc/stat's cpu line)
machine_ticks() {
    awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8 }' /proc/stat
}

run_wrk() { # contender label url [extra wrk args...]
    local who=$1 label=$2 url=$3 out non2xx before after total s3_0 s3_1 reg_0 reg_1 busy_0 all_0 busy_1 all_1 t0 secs
    shift 3
    before=$(s3_requests)
    # where the CPU went while wrk ran: the S3 server, the registries, the whole machine
    s3_0=$(cpu_ticks "$S3_PID")
    reg_0=$(cpu_ticks "${REGISTRY_PIDS[@]}")
    read -r busy_0 all_0 < <(machine_ticks)
    t0=$(now)
    out=$(wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency "$@" "$url")
    secs=$(elapsed "$t0")
    s3_1=$(cpu_ticks "$S3_PID")
    reg_1=$(cpu_ticks "${REGISTRY_PIDS[@]}")
    read -r busy_1 all_1 < <(machine_ticks)
    record "$who" "$label: S3 server's CPU, cores" "$(awk -v t=$((s3_1 - s3_0)) -v s="$secs" -v hz="$HZ" 'BEGIN { printf "%.2f", t / hz / s }')"
    record "$who" "$label: registries' CPU, cores" "$(awk -v t=$((reg_1 - reg_0)) -v s="$secs" -v hz="$HZ" 'BEGIN { printf "%.2f", t / hz / s }')"
    record "$who" "$label: machine busy, %" "$(awk -v b=$((busy_1 - busy_0)) -v a=$((all_1 - all_0)) 'BEGIN { if (a > 0) printf "%.0f", 100 * b / a; else print 0 }')"
    after=$(s3_requests)
    total=$(awk '/requests in/ { print $1 }' <<<"$out")
    if [ -n "$before" ] && [ "${total:-0}" -gt 0 ]; then
        record "$who" "$label S3 requests each" "$(awk -v d=$((after - before)) -v n="$total" 'BEGIN { printf "%.2f", d / n }')"
    fi
    non2xx=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' <<<"$out")
    if [ -n "$non2xx" ]; then
        echo "error: $who answered $non2xx non-2xx responses to $label:" >&2
        echo "$out" >&2
        exit 1
    fi
    record "$who" "$label req/s" "$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' <<<"$out")"
    record "$who" "$label p50 ms" "$(to_ms "$(awk '$1 == "50%" { print $2 }' <<<"$out")")"
    record "$who" "$label p99 ms" "$(to_ms "$(awk '$1 == "99%" { print $2 }' <<<"$out")")"
}

skopeo_copy() {
    skopeo --insecure-policy copy --quiet --preserve-digests "$@" >/dev/null
}

transfer() { # contender label bytes command...
    local who=$1 label=$2 bytes=$3 t s before after
    shift 3
    before=$(s3_requests)
    t=$(now)
    "$@"
    s=$(elapsed "$t")
    after=$(s3_requests)
    record "$who" "$label s" "$s"
    record "$who" "$label MiB/s" "$(mibps "$bytes" "$s")"
    if [ -n "$before" ]; then record "$who" "$label S3 requests" "$((after - before))"; fi
}

bench_contender() { # contender round
    local who=$1 round=$2 pulled=$WORK/pulled image bytes
    start_contender "$who" "$round"
    log "round $round: $who through nginx on $BASE ($S3_SERVER at $S3_ENDPOINT)"

    for image in big many; do
        bytes=$BIG_BYTES
        [ "$image" = many ] && bytes=$MANY_BYTES
        transfer "$who" "skopeo push $image" "$bytes" \
            skopeo_copy --dest-tls-verify=false "oci:$WORK/$image:v1" "docker://$HOSTPORT/bench/$image:v1"
    done

    # the curl yardstick: the registries without skopeo, which bounds its own pulls at
    # about 190-250 MiB/s (see docs/performance.md); one blob at a time, one connection.
    # The first pull is every blob's first GET: from the bucket for every contender. The
    # second is a hot layer pulled again, which berth's replicas serve from their disk tier
    # ([storage.cache] disk_max_bytes, on by default over S3) and docker-registry from the
    # bucket again.
    transfer "$who" "curl push big" "$BIG_BYTES" curl_push "$WORK/big" "bench/curl-big"
    transfer "$who" "curl pull big" "$BIG_BYTES" curl_pull "$WORK/big" "bench/curl-big"
    transfer "$who" "curl pull big again" "$BIG_BYTES" curl_pull "$WORK/big" "bench/curl-big"

    # skopeo's pulls come after, so berth serves them from its disk tier: skopeo bounds
    # them anyway (the curl rows show the registries)
    for image in big many; do
        bytes=$BIG_BYTES
        [ "$image" = many ] && bytes=$MANY_BYTES
        rm -rf "$pulled"
        transfer "$who" "skopeo pull $image" "$bytes" \
            skopeo_copy --src-tls-verify=false "docker://$HOSTPORT/bench/$image:v1" "oci:$pulled:v1"
        if ! cmp -s "$pulled/blobs/sha256/$(cat "$WORK/$image/manifest.digest")" \
            "$WORK/$image/blobs/sha256/$(cat "$WORK/$image/manifest.digest")"; then
            echo "error: $who: the pulled $image manifest differs from the pushed one" >&2
            exit 1
        fi
        rm -rf "$pulled"
    done

    skopeo_copy --dest-tls-verify=false "oci:$WORK/small:v1" "docker://$HOSTPORT/bench/small:v1"
    run_wrk "$who" "manifest GET" "$BASE/v2/bench/small/manifests/v1" \
        -H 'Accept: application/vnd.oci.image.manifest.v1+json'

    # the S3 server's own ceiling for a small GET, which every manifest GET makes (several)
    if [ -n "$BOTO_PY" ]; then
        run_wrk "$who" "S3 server GET 4 KiB" "$(s3_small_object_url)"
    fi

    kill_pids
    remove_cpu_cgroups
    rm -rf "$WORK/$who-r$round"
}

# shellcheck disable=SC2206 # CONTENDERS is a word list
ORDER=($CONTENDERS)
for ((round = 1; round <= ROUNDS; round++)); do
    # ABBA for any number: forward in odd rounds, backward in even ones
    if ((round % 2)); then
        list=("${ORDER[@]}")
    else
        list=()
        for ((i = ${#ORDER[@]} - 1; i >= 0; i--)); do list+=("${ORDER[i]}"); done
    fi
    for who in "${list[@]}"; do
        bench_contender "$who" "$round"
    done
done

# ---------------------------------------------------------------- report

METRICS=("manifest GET req/s|higher" "manifest GET p50 ms|lower" "manifest GET p99 ms|lower"
    "manifest GET S3 requests each|lower"
    "manifest GET: S3 server's CPU, cores|lower" "manifest GET: registries' CPU, cores|lower"
    "manifest GET: machine busy, %|lower"
    "S3 server GET 4 KiB req/s|higher" "S3 server GET 4 KiB p50 ms|lower")
for image in big many; do
    for dir in push pull; do
        METRICS+=("skopeo $dir $image MiB/s|higher" "skopeo $dir $image s|lower"
            "skopeo $dir $image S3 requests|lower")
    done
done
for dir in push pull "pull big again"; do
    [ "$dir" = "pull big again" ] || dir="$dir big"
    METRICS+=("curl $dir MiB/s|higher" "curl $dir s|lower" "curl $dir S3 requests|lower")
done

ratio() { # a b -> b/a
    awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0 && b > 0) printf "%.2f", b / a; else print "n/a" }'
}
med() { # contender metric
    if [ -n "${RESULTS["$1|$2"]:-}" ]; then median <<<"${RESULTS["$1|$2"]}"; else echo "-"; fi
}

DATE=$(date +%Y-%m-%d)
mkdir -p "$ROOT/bench/results"
OUT=$ROOT/bench/results/$DATE-s3.md
[ -e "$OUT" ] && OUT=$ROOT/bench/results/$DATE-s3-$(date +%H%M%S).md

{
    echo "# registries on S3 ($S3_SERVER) — $DATE"
    echo
    if [[ " $CONTENDERS " == *" berth"* ]]; then
        echo "- berth: $("$BERTH" --version 2>/dev/null || echo "$BERTH") (release build), S3 driver, read_ahead ${BERTH_READ_AHEAD:-4 (the default)}, read_ahead_below ${BERTH_READ_AHEAD_BELOW:-256 (the default)} MiB/s, disk tier: ${BERTH_DISK_TIER:-1073741824 (the default)} bytes under each replica's data directory, log level $LOG_LEVEL"
    fi
    if [[ " $CONTENDERS " == *" docker-registry "* ]]; then
        echo "- docker-registry: $(docker-registry --version 2>/dev/null | head -1), S3 driver (v4auth, path style, redirect disabled), \`blobdescriptor: inmemory\`, log level $LOG_LEVEL"
    fi
    case $S3_SERVER in
    moto) echo "- S3 server: moto $("${MOTO%/*}/python3" -m pip show moto 2>/dev/null | awk '/^Version:/ { print $2 }') (\`moto_server\`, in memory), fresh for every contender and round" ;;
    s3s-fs) echo "- S3 server: $(s3s-fs --version) (files under a temporary root), fresh for every contender and round" ;;
    seaweedfs) echo "- S3 server: SeaweedFS $("$WEED" version 2>/dev/null | awk '{ print $3 }') (\`weed mini\`, files under a temporary directory), fresh for every contender and round" ;;
    esac
    echo "- proxy: $(nginx -v 2>&1 | cut -d' ' -f3), round-robin, 2 workers, HTTP/1.1 keepalive to the upstreams, no buffering (relayed through a $PROXY_BUFFER buffer); in front of every contender"
    echo "- clients: $(skopeo --version), $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2), $(curl --version | head -1 | cut -d' ' -f1-2) (the curl yardstick: POST + PUT with the file per blob, GETs on one connection)"
    if [ -n "$S3_CONN_RATE" ]; then
        echo "- every TCP connection to or from the S3 server capped at $S3_CONN_RATE (tc HTB on a private network namespace's loopback, one class per low byte of the client's port); other traffic uncapped"
    fi
    if [ -n "$REGISTRY_CPU" ]; then
        echo "- every registry process (each berth replica, docker-registry) capped at $REGISTRY_CPU cores (a cgroup of its own, CFS quota over a 10 ms period)"
    fi
    echo "- machine: $(nproc) CPUs ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)), $(uname -sr); S3 server, registries, proxy and clients share it"
    echo "- ROUNDS=$ROUNDS (order turned round each round: $CONTENDERS, then backwards), wrk -t$WRK_THREADS -c$CONNECTIONS -d${DURATION}s --latency"
    echo "- big: $BIG_LAYERS x $BIG_MIB MiB incompressible layers ($BIG_BYTES bytes); many: $SMALL_LAYERS x $SMALL_KIB KiB ($MANY_BYTES bytes)"
    echo
    echo "Medians over the rounds."
    echo
    echo "| metric | docker-registry | berth-1 | berth-2 | berth-1 / docker-registry | berth-2 / berth-1 | better when |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | --- |"
    for entry in "${METRICS[@]}"; do
        metric=${entry%|*}
        better=${entry#*|}
        d=$(med docker-registry "$metric")
        b1=$(med berth-1 "$metric")
        b2=$(med berth-2 "$metric")
        echo "| $metric | $d | $b1 | $b2 | $(ratio "${d/-/0}" "${b1/-/0}") | $(ratio "${b1/-/0}" "${b2/-/0}") | $better |"
    done
    echo
    echo "Per-round values:"
    echo
    for entry in "${METRICS[@]}"; do
        metric=${entry%|*}
        line="- $metric:"
        for who in $CONTENDERS; do line+=" $who ${RESULTS["$who|$metric"]:-} ;"; done
        echo "${line% ;}"
    done
} | tee "$OUT"

log "results written to $OUT"
