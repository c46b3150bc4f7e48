#!/usr/bin/env bash
# Warm start benchmark (issue 15 §6): `berth run --rm IMAGE true` against `podman run --rm`
# (crun, the same image already local) and against `berth-runtime run` of a prepared bundle
# (the floor: no image, snapshot, monitor or record), side by side in one run, interleaved
# with the order alternating every round (ABBA over a random order drawn every two rounds, as
# bench/runtime.sh). Run by hand as root; never in CI.
#
#   bench/run.sh                 N=50 containers each
#   N=10 bench/run.sh            a quick smoke run
#   BERTH_BIN=target/debug/berth bench/run.sh
#                                another build (berth-runtime is looked for next to it)
#   BERTH_BIN_B=/path/to/other/berth bench/run.sh
#                                a second build in the same rounds ("berth run (B)", its
#                                runtime the first build's): an A/B of two builds
#   NO_PODMAN=1 bench/run.sh     leave podman out (an A/B of builds against the floor only)
#   GAP_MS=100 bench/run.sh      sleep 100 ms before each timed command: each starts as an
#                                isolated container start does. Back to back (the default),
#                                a command's first cgroup write finds the kernel's lock still
#                                set up by the previous command's (0.1 ms instead of an RCU
#                                grace period, 5-17 ms here; docs/performance.md)
#
# berth and podman each get a data directory of their own under /var/tmp (both without a
# network: --network none; podman: overlay storage, cgroupfs, the ulimits this VM's hard
# limits allow); the image is the
# same busybox root filesystem, `berth import`ed and `podman import`ed. Targets: berth at
# least 3× faster than podman, within 2× of the bare runtime. Results also go to
# bench/results/run-<date>.md (gitignored).
set -euo pipefail

N=${N:-50}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
[ "$(id -u)" -eq 0 ] || { echo "error: run as root (containers need it)" >&2; exit 1; }
for tool in podman crun busybox python3; do
    command -v "$tool" >/dev/null 2>&1 || {
        echo "error: $tool is not installed; hint: scripts/test installs the test tools" >&2
        exit 1
    }
done
if [ -z "${BERTH_BIN:-}" ]; then
    echo "building berth and berth-runtime (release)" >&2
    cargo build --release -q -p berth-cli -p berth-runtime-cli
    BERTH_BIN=$ROOT/target/release/berth
fi
RUNTIME_BIN=$(dirname "$BERTH_BIN")/berth-runtime
[ -x "$RUNTIME_BIN" ] || { echo "error: no berth-runtime next to $BERTH_BIN" >&2; exit 1; }

WORK=$(mktemp -d /var/tmp/berth-run-bench.XXXXXX)
chmod 755 "$WORK"   # a container's root (a subordinate uid) must reach berth's data directory
PODMAN=(podman --root "$WORK/podman/storage" --runroot "$WORK/podman/run" --tmpdir "$WORK/podman/tmp"
        --cgroup-manager cgroupfs --events-backend none --storage-driver overlay --runtime crun)
cleanup() {
    "$BERTH_BIN" --help >/dev/null 2>&1 && XDG_DATA_HOME=$WORK "$BERTH_BIN" container prune >/dev/null 2>&1 || true
    "${PODMAN[@]}" rm -af >/dev/null 2>&1 || true
    "${PODMAN[@]}" system reset -f >/dev/null 2>&1 || true
    grep -o " $WORK[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

mkdir -p "$WORK/rootfs/bin" "$WORK/rootfs/proc" "$WORK/rootfs/dev" "$WORK/rootfs/sys" "$WORK/rootfs/etc"
cp "$(command -v busybox)" "$WORK/rootfs/bin/busybox"
ln -s busybox "$WORK/rootfs/bin/true"
ln -s busybox "$WORK/rootfs/bin/sh"
tar -C "$WORK/rootfs" -cf "$WORK/rootfs.tar" .
XDG_DATA_HOME=$WORK "$BERTH_BIN" import "$WORK/rootfs.tar" localhost/bench:1 >/dev/null
"${PODMAN[@]}" import -q "$WORK/rootfs.tar" localhost/bench:1 >/dev/null
mkdir -p "$WORK/bundle"
cp -a "$WORK/rootfs" "$WORK/bundle/rootfs"
# the locked-down default config (Docker's seccomp profile, no_new_privileges), the same kind
# of config berth run gives the runtime
(cd "$WORK/bundle" && "$RUNTIME_BIN" spec)
python3 - "$WORK/bundle/config.json" <<'PY'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
c["process"]["args"] = ["/bin/true"]
c["process"]["terminal"] = False
json.dump(c, open(p, "w"), indent=2)
PY

python3 - "$WORK" "$N" "$BERTH_BIN" "$RUNTIME_BIN" "${PODMAN[@]}" <<'PY'
import datetime, os, random, statistics, subprocess, sys, time

work, n, berth, runtime = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
podman = sys.argv[5:]
env = dict(os.environ, XDG_DATA_HOME=work, NO_COLOR="1")
ulimits = ["--ulimit", "nofile=1024:4096", "--ulimit", "nproc=4096:4096"]
counter = [0]

def bare():
    counter[0] += 1
    return [runtime, "--root", os.path.join(work, "rt-root"), "run", "--bundle",
            os.path.join(work, "bundle"), f"bench-{counter[0]}"]

cmds = {
    # --network none, as podman's below: berth's default network (berth0) would make a
    # bridge on this host's network; bench/network.sh measures networking in a namespace
    "berth run": lambda: [berth, "run", "--rm", "--network", "none", "--userns", "host", "localhost/bench:1", "true"],
    # the default: its own user namespace (a range from /etc/subuid, id-mapped layers)
    "berth run (userns)": lambda: [berth, "run", "--rm", "--network", "none", "localhost/bench:1", "true"],
    "podman run (crun)": lambda: podman + ["run", "--rm", "--network", "none", *ulimits, "localhost/bench:1", "true"],
    "berth-runtime run": bare,
}
if os.environ.get("BERTH_BIN_B"):
    berth_b = os.environ["BERTH_BIN_B"]
    cmds["berth run (B)"] = lambda: [berth_b, "run", "--rm", "--network", "none", "--userns", "host", "localhost/bench:1", "true"]
if os.environ.get("NO_PODMAN"):
    del cmds["podman run (crun)"]

gap = float(os.environ.get("GAP_MS", "0")) / 1000

def once(name):
    if gap:
        time.sleep(gap)
    t0 = time.perf_counter()
    subprocess.run(cmds[name](), env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t0

for name in cmds:  # warm: the image unpacked, caches filled
    once(name)
orders, shuffle = {}, random.Random(int(os.environ.get("SEED", "1")))
def order(i):
    if i // 2 not in orders:
        orders[i // 2] = shuffle.sample(list(cmds), len(cmds))
    return orders[i // 2] if i % 2 == 0 else orders[i // 2][::-1]
res = {k: [] for k in cmds}
for i in range(n):
    for name in order(i):
        res[name].append(once(name))

med = lambda v: statistics.median(v) * 1000
p90 = lambda v: sorted(v)[max(int(len(v) * 0.9) - 1, 0)] * 1000
lines = [f"# berth run vs podman run vs berth-runtime run — {datetime.date.today()}", "",
         f"- N={n} warm runs of /bin/true each, interleaved ABBA; {os.cpu_count()} CPUs; berth {berth}; "
         f"{f'{gap * 1000:g} ms idle before each' if gap else 'back to back'}", "",
         "| command | median ms | p90 ms |", "| --- | ---: | ---: |"]
for k, v in res.items():
    lines.append(f"| {k} | {med(v):.1f} | {p90(v):.1f} |")
b = med(res["berth run"])
lines.append("")
if "podman run (crun)" in res:
    lines.append(f"- podman / berth: {med(res['podman run (crun)']) / b:.2f}× (target ≥ 3×)")
lines.append(f"- berth / bare runtime: {b / med(res['berth-runtime run']):.2f}× (target ≤ 2×)")
if "berth run (B)" in res:
    lines.append(f"- B / berth: {med(res['berth run (B)']) / b:.3f}× (B: {os.environ['BERTH_BIN_B']})")
text = "\n".join(lines) + "\n"
print(text)
os.makedirs("bench/results", exist_ok=True)
open(f"bench/results/run-{datetime.date.today()}.md", "w").write(text)
PY
