#!/usr/bin/env bash
# Measure the default security of a container of berth, podman and docker from inside, with
# the probe (tests/probe), and print the markdown table of docs/security.md ("measured").
#
#   scripts/security-defaults.sh [OUTDIR]
#
# One root filesystem (static busybox + the static probe) is run three ways, each with the
# engine's defaults and the same probe steps:
#   berth:  the config berth_image::spec::build_spec makes with no options (the example
#           crates/image/examples/default_spec.rs, user namespace 0 -> 100000 size 65536 as
#           the engine allocates) run by berth-runtime;
#   podman: `podman import` + `podman run --rm` (Debian's podman, crun);
#   docker: `docker import` + `docker run --rm` (Debian's docker.io). When no daemon answers
#           at $DOCKER_HOST (or the default socket), the script starts `dockerd` itself, no
#           systemd, with its data root under /var/lib/berth-secdef-docker (the same disk),
#           and stops it by PID on exit.
# plus the probe on the host as a baseline. The reports land in OUTDIR (a temporary
# directory by default) as berth.json podman.json docker.json host.json; the table comes
# from scripts/security-defaults.py, which also says per row whether berth's cell is
# stricter than or equal to both peers' and exits 1 when one is not.
#
# podman on a host without CAP_SYS_RESOURCE (as this project's CI VM): podman 4 asks crun
# for RLIMIT_NOFILE and RLIMIT_NPROC of 1048576, which fails there ("setrlimit
# RLIMIT_NOFILE: Operation not permitted"); the script passes `--ulimit` with the highest
# limits (conmon's, which crun inherits), as a user of such a host must (or
# `default_ulimits` in containers.conf).
# Needs root, python3, podman, docker.io (dockerd), busybox-static; builds with cargo.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-$(mktemp -d /tmp/berth-security-defaults.XXXXXX)}
mkdir -p "$OUT"
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BUSYBOX=${BUSYBOX:-/bin/busybox}
IMAGE=localhost/berth-security-defaults:probe

# the probe steps; unshare(CLONE_NEWUSER) comes last: when allowed it moves the probe into
# a new user namespace (x86_64 numbers: see scripts/security-defaults.py SYSCALLS)
STEPS=(identity caps nnp seccomp mounts rlimits list:/dev read:/sys/fs/cgroup/pids/pids.max
    read:/sys/fs/cgroup/pids.max mount-tmpfs:/mnt
    syscall:272:131072 syscall:308:-1:0 syscall:250:0:-3:0 syscall:101:12:2147483647
    syscall:321:0:0:0 syscall:298:0:0:0:-1:0 syscall:425:0:0 syscall:435:0:0
    syscall:272:268435456)

log() { printf '%s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (containers of all three engines, as root)"
for t in python3 podman docker "$BUSYBOX"; do
    command -v "$t" >/dev/null 2>&1 || die "$t is missing"
done

cleanup_pids=()
cleanup() {
    for p in "${cleanup_pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${cleanup_pids[@]}"; do
        for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    done
}
trap cleanup EXIT

log "building the probe (static), berth-runtime and the default_spec example"
if [ -z "${BERTH_PROBE_BIN:-}" ]; then
    (cd "$ROOT" && CARGO_ENCODED_RUSTFLAGS=$'-Ctarget-feature=+crt-static\x1f-Cstrip=debuginfo' \
        RUSTFLAGS= cargo build --quiet --release -p berth-probe \
        --target x86_64-unknown-linux-gnu --target-dir "$TARGET/probe")
    BERTH_PROBE_BIN=$TARGET/probe/x86_64-unknown-linux-gnu/release/berth-probe
fi
(cd "$ROOT" && cargo build --quiet -p berth-runtime-cli -p berth-image --example default_spec)
RUNTIME=${BERTH_RUNTIME_BIN:-$TARGET/debug/berth-runtime}

log "root filesystem: busybox + probe"
rootfs=$OUT/rootfs
rm -rf "$rootfs"
mkdir -p "$rootfs"/{bin,proc,sys,dev,etc,mnt,root,run,var,tmp}
chmod 1777 "$rootfs/tmp"
chmod 755 "$OUT" "$rootfs"
cp "$BUSYBOX" "$rootfs/bin/busybox"
for a in sh id cat ls; do ln -s busybox "$rootfs/bin/$a"; done
install -m 0755 "$BERTH_PROBE_BIN" "$rootfs/probe"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$rootfs/etc/passwd"
printf 'root:x:0:\nnobody:x:65534:\n' >"$rootfs/etc/group"
tar -C "$rootfs" -cf "$OUT/rootfs.tar" .

log "host baseline"
"$BERTH_PROBE_BIN" "${STEPS[@]}" >"$OUT/host.json"

log "berth: build_spec defaults under berth-runtime"
bundle=$OUT/berth-bundle
mkdir -p "$bundle"
"$TARGET/debug/examples/default_spec" "$rootfs" 100000 65536 /probe "${STEPS[@]}" >"$bundle/config.json"
"$RUNTIME" run --bundle "$bundle" "berth-secdef-$$" >"$OUT/berth.json"

log "podman $(podman --version | awk '{print $3}') (crun)"
podman rmi -f "$IMAGE" >/dev/null 2>&1 || true
podman import "$OUT/rootfs.tar" "$IMAGE" >/dev/null
podman_ulimits=()
if [ $(( 0x$(awk '/^CapEff/ {print $2}' /proc/self/status) >> 24 & 1 )) = 0 ]; then
    # the highest limits crun can set are those of conmon, its parent: read them from a
    # conmon whose container asks for little
    cid=$(podman run -d --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 "$IMAGE" /probe wait-signal)
    conmon=$(podman inspect --format '{{.State.ConmonPid}}' "$cid")
    nofile=$(awk '/Max open files/ {print $5}' "/proc/$conmon/limits")
    nproc=$(awk '/Max processes/ {print $4}' "/proc/$conmon/limits")
    podman rm -f "$cid" >/dev/null
    podman_ulimits=(--ulimit "nofile=$nofile:$nofile" --ulimit "nproc=$nproc:$nproc")
    log "  no CAP_SYS_RESOURCE here, podman's default 1048576 cannot be set: ${podman_ulimits[*]}"
fi
podman run --rm "${podman_ulimits[@]}" "$IMAGE" /probe "${STEPS[@]}" >"$OUT/podman.json"
podman rmi -f "$IMAGE" >/dev/null

if ! docker info >/dev/null 2>&1; then
    command -v dockerd >/dev/null 2>&1 || die "no docker daemon answers and dockerd is missing (apt-get install docker.io)"
    run=/run/berth-secdef-docker
    mkdir -p "$run" /var/lib/berth-secdef-docker
    export DOCKER_HOST=unix://$run/docker.sock
    log "starting dockerd (data root /var/lib/berth-secdef-docker, socket $run/docker.sock)"
    dockerd --data-root /var/lib/berth-secdef-docker --exec-root "$run/exec" \
        -H "$DOCKER_HOST" --pidfile "$run/dockerd.pid" --iptables=false \
        >"$OUT/dockerd.log" 2>&1 &
    cleanup_pids+=("$!")
    for _ in $(seq 300); do docker info >/dev/null 2>&1 && break; sleep 0.1; done
    docker info >/dev/null 2>&1 || die "dockerd did not start: see $OUT/dockerd.log"
fi
log "docker $(docker version --format '{{.Server.Version}}') (runc)"
docker rmi -f "$IMAGE" >/dev/null 2>&1 || true
docker import "$OUT/rootfs.tar" "$IMAGE" >/dev/null
docker run --rm "$IMAGE" /probe "${STEPS[@]}" >"$OUT/docker.json"
docker rmi -f "$IMAGE" >/dev/null

log "reports in $OUT"
python3 "$ROOT/scripts/security-defaults.py" "$OUT/berth.json" "$OUT/podman.json" \
    "$OUT/docker.json" "$OUT/host.json" \
    "Measured $(date -u +%Y-%m-%d) by scripts/security-defaults.sh on $(uname -sr): podman $(podman --version | awk '{print $3}') with crun $(crun --version | awk 'NR==1 {print $3}')${podman_ulimits:+ and ${podman_ulimits[*]}}, docker $(docker version --format '{{.Server.Version}}') with runc $(runc --version | awk 'NR==1 {print $3}'), berth-runtime."
