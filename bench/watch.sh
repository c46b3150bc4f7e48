#!/usr/bin/env bash
# Runtime detection benchmark (issue 22 §4): what `berth watch` costs the containers it
# watches, and how fast it alerts and kills. Run by hand as root; never in CI.
#
#   bench/watch.sh                  ROUNDS=5 rounds of each workload, watch on and off
#   ROUNDS=3 bench/watch.sh         a quicker run
#   BERTH_BIN=target/debug/berth bench/watch.sh   another build (berth-runtime beside it)
#
# One `berth run -d` container of a busybox image (its own data directory under /var/tmp, no
# network) runs the workloads through `berth exec`, timed from the host (the exec's own cost,
# about the same either way, is included):
#   - exec-heavy: EXECS (2000) runs of /bin/true from one shell;
#   - syscall-heavy: `dd if=/dev/zero of=/dev/null bs=1 count=2M` (4 M read/write calls,
#     which no probe traces: the cost of the attached programs being there);
#   - open-heavy: OPENS (20000) opens for write (`: > /tmp/f`), which the openat tracepoint
#     sees and the kernel side reports;
# each with `berth watch` off and on (started before, stopped after; JSON lines to a file),
# interleaved ABBA, median of the rounds. Then, watch on:
#   - throughput: a storm of STORM (20000) execs from 2 shells at once, the default ring
#     buffer: execs recorded, dropped, recorded per second;
#   - latency: LAT (100) execs of a new binary each time (busybox with a byte appended: each
#     one hashed, 2 MB), alert only and then --enforce: exec-to-alert (`age_us`) and
#     exec-to-kill (`kill_us`) p50 and p99.
# Results also go to bench/results/watch-<date>.md (gitignored).
set -euo pipefail

ROUNDS=${ROUNDS:-5}
EXECS=${EXECS:-2000}
OPENS=${OPENS:-20000}
STORM=${STORM:-20000}
LAT=${LAT:-100}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
[ "$(id -u)" -eq 0 ] || { echo "error: run as root (the eBPF probes and containers need it)" >&2; exit 1; }
for tool in busybox python3; do
    command -v "$tool" >/dev/null 2>&1 || {
        echo "error: $tool is not installed; hint: scripts/test installs the test tools" >&2
        exit 1
    }
done
if [ -z "${BERTH_BIN:-}" ]; then
    echo "building berth and berth-runtime (release)" >&2
    cargo build --release -q -p berth-cli -p berth-runtime-cli
    BERTH_BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/berth
fi
# `berth run` finds berth-runtime on PATH: the one built beside berth first
export PATH="$(dirname "$BERTH_BIN"):$PATH"
[ -x "$(dirname "$BERTH_BIN")/berth-runtime" ] || { echo "error: no berth-runtime next to $BERTH_BIN" >&2; exit 1; }

WORK=$(mktemp -d /var/tmp/berth-watch-bench.XXXXXX)
chmod 755 "$WORK"
cleanup() {
    XDG_DATA_HOME=$WORK "$BERTH_BIN" rm -f bench >/dev/null 2>&1 || true
    grep -o " $WORK[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

mkdir -p "$WORK/rootfs/bin" "$WORK/rootfs/proc" "$WORK/rootfs/dev" "$WORK/rootfs/sys" "$WORK/rootfs/tmp"
cp "$(command -v busybox)" "$WORK/rootfs/bin/busybox"
for a in sh true dd seq cat echo sleep chmod mkdir wait; do ln -s busybox "$WORK/rootfs/bin/$a"; done
XDG_DATA_HOME=$WORK "$BERTH_BIN" import "$WORK/rootfs" localhost/watch-bench:1 >/dev/null
XDG_DATA_HOME=$WORK "$BERTH_BIN" run -d --name bench --network none localhost/watch-bench:1 sleep 1000000 >/dev/null

python3 - "$WORK" "$BERTH_BIN" "$ROUNDS" "$EXECS" "$OPENS" "$STORM" "$LAT" <<'PY'
import datetime, json, os, statistics, subprocess, sys, time

work, berth = sys.argv[1], sys.argv[2]
rounds, execs, opens, storm, lat = map(int, sys.argv[3:8])
env = dict(os.environ, XDG_DATA_HOME=work, NO_COLOR="1")

def sh(script):
    subprocess.run([berth, "exec", "bench", "sh", "-c", script], env=env, check=True,
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

class Watch:
    """`berth watch bench ARGS`, running until stopped (SIGTERM); its records."""
    n = 0
    def __init__(self, *args):
        Watch.n += 1
        self.out = os.path.join(work, f"watch-{Watch.n}.jsonl")
        self.err = os.path.join(work, f"watch-{Watch.n}.err")
        self.p = subprocess.Popen([berth, "watch", "--log-level", "info", *args, "bench"], env=env,
                                  stdin=subprocess.DEVNULL, stdout=open(self.out, "w"),
                                  stderr=open(self.err, "w"))
        deadline = time.monotonic() + 30
        while "watching container" not in open(self.err).read():
            if self.p.poll() is not None or time.monotonic() > deadline:
                sys.exit("berth watch did not start:\n" + open(self.err).read())
            time.sleep(0.02)
    def stop(self):
        self.p.terminate()
        self.p.wait(timeout=30)
        return [json.loads(l) for l in open(self.out)]

workloads = {
    "exec-heavy": f"i=0; while [ $i -lt {execs} ]; do /bin/true; i=$((i+1)); done",
    "syscall-heavy": "dd if=/dev/zero of=/dev/null bs=1 count=2M 2>/dev/null",
    "open-heavy": f"i=0; while [ $i -lt {opens} ]; do : > /tmp/f; i=$((i+1)); done",
}
for w in workloads.values():  # warm
    sh(w)

def timed(script, on):
    w = Watch() if on else None
    t0 = time.perf_counter()
    sh(script)
    t = time.perf_counter() - t0
    if w:
        w.stop()
    return t

res = {k: {False: [], True: []} for k in workloads}
for r in range(rounds):
    for i, (name, script) in enumerate(workloads.items()):
        order = (False, True) if (r + i) % 2 == 0 else (True, False)
        for on in order:
            res[name][on].append(timed(script, on))

# throughput: a storm from two shells at once, the default ring buffer
w = Watch()
t0 = time.perf_counter()
half = storm // 2
sh(f"s() {{ i=0; while [ $i -lt {half} ]; do /bin/true; i=$((i+1)); done; }}; s & s & wait")
storm_s = time.perf_counter() - t0
recs = w.stop()
storm_recorded = sum(1 for r in recs if r["kind"] == "exec" and r["process"]["exe"] == "/bin/true")
storm_dropped = sum(r["details"]["count"] for r in recs if r["kind"] == "dropped")

# latency: a new binary each time, alert only, then enforced (each killed)
# (alert only: each one exits at once; enforced: each would sleep 5 s, and is killed first)
def drift_records(seconds, *args):
    w = Watch(*args)
    sh(f"mkdir -p /tmp/x; i=0; while [ $i -lt {lat} ]; do cat /bin/busybox > /tmp/x/sleep; "
       f"echo $i >> /tmp/x/sleep; chmod +x /tmp/x/sleep; /tmp/x/sleep {seconds}; i=$((i+1)); done; true")
    return [r for r in w.stop() if r["kind"] == "exec" and r["process"]["exe"] == "/tmp/x/sleep"]
alert_recs = drift_records(0)
kill_recs = drift_records(5, "--enforce")
def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, max(0, round(p / 100 * len(v)) - 1))]
ms = lambda us: us / 1000
alert_us = [r["details"]["age_us"] for r in alert_recs]
kill_us = [r["details"]["kill_us"] for r in kill_recs if r["details"].get("kill") == "killed"]
killed = sum(1 for r in kill_recs if r["details"].get("kill") == "killed")

load = open("/proc/loadavg").read().split()[:3]
lines = [f"# berth watch overhead and latency — {datetime.date.today()}", "",
         f"- {rounds} rounds, watch off/on interleaved ABBA, medians; {os.cpu_count()} CPUs, "
         f"load average {' '.join(load)} at the end; berth {berth}", "",
         "| workload (in a container) | watch off s | watch on s | overhead |",
         "| --- | ---: | ---: | ---: |"]
for name, r in res.items():
    off, on = statistics.median(r[False]), statistics.median(r[True])
    lines.append(f"| {name} | {off:.3f} | {on:.3f} | {100 * (on - off) / off:+.1f} % |")
lines += ["",
          f"- exec storm, 2 shells, default ring buffer (8 MiB): {storm} execs in {storm_s:.2f} s "
          f"({storm / storm_s:.0f}/s), {storm_recorded} recorded, {storm_dropped} dropped",
          f"- exec-to-alert (a new 2 MB binary each time, hashed): p50 {ms(pct(alert_us, 50)):.2f} ms, "
          f"p99 {ms(pct(alert_us, 99)):.2f} ms over {len(alert_us)} execs",
          f"- exec-to-kill (--enforce): p50 {ms(pct(kill_us, 50)):.2f} ms, p99 {ms(pct(kill_us, 99)):.2f} ms; "
          f"{killed} of {len(kill_recs)} killed (the others had exited first)"]
text = "\n".join(lines) + "\n"
print(text)
os.makedirs("bench/results", exist_ok=True)
open(f"bench/results/watch-{datetime.date.today()}.md", "w").write(text)
PY
