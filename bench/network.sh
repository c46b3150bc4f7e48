#!/usr/bin/env bash
# Networking benchmark (issue 16 §3), by hand as root, never in CI. Everything runs inside a
# network namespace this script makes (`ip netns add`, berth and podman entered into it with
# nsenter): their bridges, veths, iptables rules and every packet stay there, and the
# namespace is deleted at the end.
#
#   bench/network.sh              N=20 runs of each, interleaved ABBA
#   N=50 bench/network.sh
#   BERTH_BIN=target/debug/berth bench/network.sh
#                                 another build (berth-runtime is looked for next to it)
#   IPERF_SECS=5                  length of each iperf3 run
#
# Measured:
# 1. `run --rm IMAGE true`: berth on its default bridge network (berth0: bridge + host-local
#    + portmap + bandwidth, masquerade and forwarding as the network's own iptables rules,
#    crates/engine/src/hostrules.rs) vs `--network none`, and podman's `run --rm` on its
#    default network vs `--network none`, with each of podman's two network backends, chosen
#    explicitly (`--network-backend`), each with a store of its own: netavark (podman's
#    default since 4.0 where it is installed, and what issue 16 compares with; Debian's
#    netavark package) and CNI (its `podman` network is bridge + host-local + portmap +
#    firewall + tuning: the standard plugins, with their per-container masquerade and
#    forwarding rules, which berth0 had before it made them per network). The bridge − none difference
#    of the medians is what networking adds to a container's whole life (set-up before the
#    start, teardown at the removal). NETAVARK=0 leaves netavark out where it is not
#    installed. And nerdctl's `run --rm` on its default network (bridge + host-local +
#    portmap + firewall + tuning) vs `--net none`, where `nerdctl` is on PATH: a containerd
#    of its own (Debian's, runc) started in the namespace, its root, state and socket under
#    the bench's directory. Debian has no nerdctl; build one outside the tree, e.g. v2.0.5 from
#    the Go module proxy (`go mod download github.com/containerd/nerdctl/v2@v2.0.5`, then
#    `go build ./cmd/nerdctl` in a copy of that directory). NERDCTL=0 leaves it out.
# 2. `create` and `rm` of a container, bridge vs none, for berth: ADD alone (create) and DEL
#    alone (rm). Target: network setup (ADD) under 30 ms per container.
# 3. iperf3 from a container's namespace to a server on the bridge's gateway, against
#    iperf3 over the namespace's loopback (the limit).
# Both engines run the same busybox root filesystem, imported; both without a user namespace
# (`--userns host` for berth: podman's default has none). Results also go to
# bench/results/network-<date>.md (gitignored).
set -euo pipefail

N=${N:-20}
IPERF_SECS=${IPERF_SECS:-5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
[ "$(id -u)" -eq 0 ] || { echo "error: run as root (bridges and containers need it)" >&2; exit 1; }
for tool in podman crun busybox python3 ip nsenter iperf3 iptables; do
    command -v "$tool" >/dev/null 2>&1 || {
        echo "error: $tool is not installed; hint: scripts/test installs the test tools" >&2
        exit 1
    }
done
[ -x /usr/lib/cni/bridge ] || { echo "error: no CNI plugins in /usr/lib/cni (containernetworking-plugins)" >&2; exit 1; }
NETAVARK=${NETAVARK:-1}
if [ "$NETAVARK" = 1 ] && [ ! -x /usr/lib/podman/netavark ]; then
    echo "error: netavark is not installed; hint: apt-get install netavark (podman then prefers it" >&2
    echo "  for stores that have no containers yet), or NETAVARK=0 to compare with CNI alone" >&2
    exit 1
fi
NERDCTL=${NERDCTL:-$(command -v nerdctl >/dev/null 2>&1 && echo 1 || echo 0)}
if [ "$NERDCTL" = 1 ]; then
    for tool in nerdctl containerd containerd-shim-runc-v2 runc; do
        command -v "$tool" >/dev/null 2>&1 || {
            echo "error: NERDCTL=1 needs $tool (Debian's containerd and runc; nerdctl built by hand)" >&2
            exit 1
        }
    done
else
    echo "note: nerdctl is not on PATH: measuring without it (see the header)" >&2
fi
if [ -z "${BERTH_BIN:-}" ]; then
    echo "building berth and berth-runtime (release)" >&2
    cargo build --release -q -p berth-cli -p berth-runtime-cli
    BERTH_BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/berth
fi
RUNTIME_BIN=$(dirname "$BERTH_BIN")/berth-runtime
[ -x "$RUNTIME_BIN" ] || { echo "error: no berth-runtime next to $BERTH_BIN" >&2; exit 1; }

NETNS=berth-bench-net-$$
WORK=$(mktemp -d /var/tmp/berth-net-bench.XXXXXX)
chmod 755 "$WORK"
IN_NS=(nsenter "--net=/run/netns/$NETNS" --)
# one store per backend: podman keeps a container's networks in the backend's own format
podman_with() {
    local backend=$1
    echo "${IN_NS[@]}" podman --network-backend "$backend" --root "$WORK/p-$backend/storage" \
        --runroot "$WORK/p-$backend/run" --tmpdir "$WORK/p-$backend/tmp" \
        --network-config-dir "$WORK/p-$backend/networks" --cgroup-manager cgroupfs \
        --events-backend none --storage-driver overlay --runtime crun
}
read -r -a PODMAN <<<"$(podman_with cni)"
PODMAN_NV=()
[ "$NETAVARK" = 1 ] && read -r -a PODMAN_NV <<<"$(podman_with netavark)"
BERTH=(env XDG_DATA_HOME="$WORK/data" XDG_CONFIG_HOME="$WORK/config" NO_COLOR=1
       PATH="$(dirname "$BERTH_BIN"):$PATH" "${IN_NS[@]}" "$BERTH_BIN")
NERDCTL_ARGS=()
CONTAINERD_PID=""
if [ "$NERDCTL" = 1 ]; then
    NERDCTL_ARGS=("${IN_NS[@]}" nerdctl --address "$WORK/ctd/sock" --data-root "$WORK/nerdctl"
                  --cni-path /usr/lib/cni --cni-netconfpath "$WORK/nerdctl-net"
                  --cgroup-manager cgroupfs --snapshotter overlayfs --namespace bench)
fi
IPERF_PID=""
cleanup() {
    [ -n "$IPERF_PID" ] && kill "$IPERF_PID" 2>/dev/null || true
    "${BERTH[@]}" rm -f bench-iperf >/dev/null 2>&1 || true
    "${BERTH[@]}" container prune >/dev/null 2>&1 || true
    # (no `podman system reset`: it removes networks, and the system's CNI lists with them)
    "${PODMAN[@]}" rm -af >/dev/null 2>&1 || true
    "${PODMAN[@]}" rmi -af >/dev/null 2>&1 || true
    if [ ${#PODMAN_NV[@]} -gt 0 ]; then
        "${PODMAN_NV[@]}" rm -af >/dev/null 2>&1 || true
        "${PODMAN_NV[@]}" rmi -af >/dev/null 2>&1 || true
    fi
    if [ -n "$CONTAINERD_PID" ]; then
        for c in $("${NERDCTL_ARGS[@]}" ps -aq 2>/dev/null); do
            "${NERDCTL_ARGS[@]}" rm -f "$c" >/dev/null 2>&1 || true
        done
        kill "$CONTAINERD_PID" 2>/dev/null || true
        wait "$CONTAINERD_PID" 2>/dev/null || true
    fi
    grep -o " $WORK[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    ip netns del "$NETNS" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

ip netns add "$NETNS"
ip -n "$NETNS" link set lo up
mkdir -p "$WORK/rootfs/bin" "$WORK/rootfs/proc" "$WORK/rootfs/dev" "$WORK/rootfs/sys" "$WORK/rootfs/etc"
cp "$(command -v busybox)" "$WORK/rootfs/bin/busybox"
for a in true sh sleep; do ln -s busybox "$WORK/rootfs/bin/$a"; done
tar -C "$WORK/rootfs" -cf "$WORK/rootfs.tar" .
"${BERTH[@]}" import "$WORK/rootfs.tar" localhost/bench:1 >/dev/null
"${PODMAN[@]}" import -q "$WORK/rootfs.tar" localhost/bench:1 >/dev/null
[ ${#PODMAN_NV[@]} -gt 0 ] && "${PODMAN_NV[@]}" import -q "$WORK/rootfs.tar" localhost/bench:1 >/dev/null
if [ "$NERDCTL" = 1 ]; then
    mkdir -p "$WORK/ctd"
    printf 'version = 2\nroot = "%s"\nstate = "%s"\n[grpc]\n  address = "%s"\n' \
        "$WORK/ctd/root" "$WORK/ctd/state" "$WORK/ctd/sock" >"$WORK/ctd/config.toml"
    "${IN_NS[@]}" containerd --config "$WORK/ctd/config.toml" >"$WORK/ctd/log" 2>&1 &
    CONTAINERD_PID=$!
    for _ in $(seq 100); do [ -S "$WORK/ctd/sock" ] && break; sleep 0.1; done
    [ -S "$WORK/ctd/sock" ] || { echo "error: containerd did not start: $(tail -3 "$WORK/ctd/log")" >&2; exit 1; }
    "${BERTH[@]}" save -o "$WORK/bench-image.tar" localhost/bench:1 >/dev/null 2>&1
    "${NERDCTL_ARGS[@]}" load -i "$WORK/bench-image.tar" >/dev/null 2>&1
fi
VERSIONS="$(podman --version), $(dpkg-query -W -f 'containernetworking-plugins ${Version}' containernetworking-plugins 2>/dev/null)"
[ ${#PODMAN_NV[@]} -gt 0 ] && VERSIONS+=", $(/usr/lib/podman/netavark --version)"
# what each store reports in use: proves the flag took
VERSIONS+=", backends in use: $("${PODMAN[@]}" info --format '{{.Host.NetworkBackend}}')"
[ ${#PODMAN_NV[@]} -gt 0 ] && VERSIONS+=" and $("${PODMAN_NV[@]}" info --format '{{.Host.NetworkBackend}}')"
if [ "$NERDCTL" = 1 ]; then
    NV=$("${NERDCTL_ARGS[@]}" version --format '{{.Client.Version}}' 2>/dev/null || true)
    case "$NV" in ""|"<unknown>") NV="(built from source: no version stamped)" ;; esac
    VERSIONS+=", nerdctl $NV with containerd $(containerd --version | cut -d' ' -f3) and runc $(runc --version | head -1 | cut -d' ' -f3)"
fi

NERDCTL_CMD="${NERDCTL_ARGS[*]}" python3 - "$WORK" "$N" "$IPERF_SECS" "$VERSIONS" "$NETNS" "${#BERTH[@]}" "${#PODMAN[@]}" \
    "${BERTH[@]}" "${PODMAN[@]}" "${PODMAN_NV[@]}" <<'PY'
import datetime, json, os, random, statistics, subprocess, sys, time

work, n, iperf_secs, backend, netns = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
nb, npod = int(sys.argv[6]), int(sys.argv[7])
berth = sys.argv[8:8 + nb]
podman = sys.argv[8 + nb:8 + nb + npod]
podman_nv = sys.argv[8 + nb + npod:]
nerdctl = os.environ.get("NERDCTL_CMD", "").split()
in_ns = ["nsenter", f"--net=/run/netns/{netns}", "--"]
ulimits = ["--ulimit", "nofile=1024:4096", "--ulimit", "nproc=4096:4096"]
img = "localhost/bench:1"

def sh(cmd, **kw):
    return subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, check=True, text=True, **kw).stdout

def timed(cmd):
    t0 = time.perf_counter()
    subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t0

def abba(cmds, n, seed):
    for name in cmds:  # warm: images unpacked, networks written, caches filled
        cmds[name]()
    orders, shuffle = {}, random.Random(seed)
    def order(i):
        if i // 2 not in orders:
            orders[i // 2] = shuffle.sample(list(cmds), len(cmds))
        return orders[i // 2] if i % 2 == 0 else orders[i // 2][::-1]
    res = {k: [] for k in cmds}
    for i in range(n):
        for name in order(i):
            res[name].append(cmds[name]())
    return res

med = lambda v: statistics.median(v) * 1000
p90 = lambda v: sorted(v)[max(int(len(v) * 0.9) - 1, 0)] * 1000
seed = int(os.environ.get("SEED", "1"))

# 1. whole runs
runs = {
    "berth run (bridge)": lambda: timed(berth + ["run", "--rm", "--userns", "host", img, "true"]),
    "berth run --network none": lambda: timed(berth + ["run", "--rm", "--userns", "host", "--network", "none", img, "true"]),
    "podman run (bridge, CNI)": lambda: timed(podman + ["run", "--rm", *ulimits, img, "true"]),
    "podman run --network none (CNI)": lambda: timed(podman + ["run", "--rm", "--network", "none", *ulimits, img, "true"]),
}
if podman_nv:
    runs["podman run (bridge, netavark)"] = lambda: timed(podman_nv + ["run", "--rm", *ulimits, img, "true"])
    runs["podman run --network none (netavark)"] = lambda: timed(podman_nv + ["run", "--rm", "--network", "none", *ulimits, img, "true"])
if nerdctl:
    runs["nerdctl run (bridge)"] = lambda: timed(nerdctl + ["run", "--rm", img, "true"])
    runs["nerdctl run --network none"] = lambda: timed(nerdctl + ["run", "--rm", "--net", "none", img, "true"])
res = abba(runs, n, seed)

# 2. berth's ADD (create) and DEL (rm) alone
def create_rm(network):
    def step():
        t0 = time.perf_counter()
        cid = sh(berth + ["create", "--userns", "host", "--network", network, img, "true"]).strip()
        t1 = time.perf_counter()
        sh(berth + ["rm", cid])
        t2 = time.perf_counter()
        return (t1 - t0, t2 - t1)
    return step
pairs = abba({"bridge": create_rm("bridge"), "none": create_rm("none")}, n, seed + 1)
create = {k: [a for a, _ in v] for k, v in pairs.items()}
remove = {k: [b for _, b in v] for k, v in pairs.items()}

# 3. iperf3: a container's namespace to the bridge's gateway, and loopback
def iperf(client_ns, addr):
    server = subprocess.Popen(in_ns + ["iperf3", "-s", "-1", "-B", addr, "-p", "5299"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 10
        while True:
            out = subprocess.run(["nsenter", f"--net={client_ns}", "--", "iperf3", "-c", addr,
                                  "-p", "5299", "-J", "-t", str(iperf_secs)],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            try:
                v = json.loads(out.stdout)
            except ValueError:
                v = {"error": out.stdout}
            if "error" not in v or time.time() > deadline:
                break
            time.sleep(0.2)  # the server is not listening yet
        return v["end"]["sum_received"]["bits_per_second"] / 1e9
    finally:
        server.kill()
        server.wait()

sh(berth + ["run", "-d", "--name", "bench-iperf", "--userns", "host", img, "sleep", "600"])
info = json.loads(sh(berth + ["container", "inspect", "bench-iperf"]))
sandbox = info[0]["NetworkSettings"]["SandboxKey"]
bridge_gbit = iperf(sandbox, "10.89.0.1")
loop_gbit = iperf(f"/run/netns/{netns}", "127.0.0.1")
sh(berth + ["rm", "-f", "bench-iperf"])

lines = [f"# bench/network.sh — {datetime.date.today()}", "",
         f"- N={n} each, interleaved ABBA (seed {seed}); {os.cpu_count()} CPUs; load {os.getloadavg()[0]:.1f} at the end; "
         f"{backend}; berth {berth[-1]}", "",
         "| command | median ms | p90 ms |", "| --- | ---: | ---: |"]
for k, v in res.items():
    lines.append(f"| {k} | {med(v):.1f} | {p90(v):.1f} |")
for k in ("bridge", "none"):
    lines.append(f"| berth create --network {k} | {med(create[k]):.1f} | {p90(create[k]):.1f} |")
    lines.append(f"| berth rm (--network {k}) | {med(remove[k]):.1f} | {p90(remove[k]):.1f} |")
share = lambda bridge, none: med(res[bridge]) - med(res[none])
shares = [f"berth {share('berth run (bridge)', 'berth run --network none'):.1f} ms",
          f"podman with CNI {share('podman run (bridge, CNI)', 'podman run --network none (CNI)'):.1f} ms"]
ratios = [f"{med(res['podman run (bridge, CNI)']) / med(res['berth run (bridge)']):.2f}× with CNI"]
if podman_nv:
    shares.append(f"podman with netavark {share('podman run (bridge, netavark)', 'podman run --network none (netavark)'):.1f} ms")
    ratios.insert(0, f"{med(res['podman run (bridge, netavark)']) / med(res['berth run (bridge)']):.2f}× with netavark")
if nerdctl:
    shares.append(f"nerdctl {share('nerdctl run (bridge)', 'nerdctl run --network none'):.1f} ms")
add = med(create["bridge"]) - med(create["none"])
dele = med(remove["bridge"]) - med(remove["none"])
lines += ["",
          f"- networking's share of a `run --rm` (bridge − none medians): {', '.join(shares)}",
          f"- berth's network setup (CNI ADD, create bridge − none): {add:.1f} ms (target < 30 ms); teardown (DEL, rm): {dele:.1f} ms",
          f"- podman run / berth run, both on their bridge: {'; '.join(ratios)} (target ≥ 2×)",
          *([f"- nerdctl run / berth run, both on their bridge: "
             f"{med(res['nerdctl run (bridge)']) / med(res['berth run (bridge)']):.2f}×"] if nerdctl else []),
          f"- iperf3 ({iperf_secs} s): container → bridge gateway {bridge_gbit:.1f} Gbit/s; loopback {loop_gbit:.1f} Gbit/s "
          f"({bridge_gbit / loop_gbit:.0%} of loopback)"]
text = "\n".join(lines) + "\n"
print(text)
os.makedirs("bench/results", exist_ok=True)
open(f"bench/results/network-{datetime.date.today()}.md", "w").write(text)
PY
