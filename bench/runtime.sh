#!/usr/bin/env bash
# Runtime benchmark: berth-runtime against Debian's runc and crun, side by side in one run,
# interleaved with the order alternating every round (A B C, then C B A: ABBA), over a random
# order drawn every two rounds (SEED=N picks the draw), on the same busybox bundle. Run by hand as root; never in CI.
#
# State (each runtime's --root) and bundle live where users have them: on the disk
# (/var/tmp, the root filesystem) by default, since /run is on disk on many hosts and a
# runtime that fsyncs its state pays for it there; STATE=tmpfs puts both on /dev/shm (a
# systemd host's /run).
#
#   bench/runtime.sh              N=100 sequential containers per runtime, 20 concurrent
#   N=20 bench/runtime.sh         a quick smoke run
#   STATE=tmpfs bench/runtime.sh  state and bundle on tmpfs
#   PARTS=rss bench/runtime.sh    only some parts: any of time (run, create+start+delete,
#                                 CPU), rss, concurrent; comma-separated (default: all)
#   BERTH_BASELINE_BIN=/old/berth-runtime bench/runtime.sh
#                                 also measure an older build, interleaved, as "berth-baseline"
#
# Per runtime: median and p90 wall time of `run` of /bin/true; median of create+start+delete
# (the container runs /bin/true; delete after it exits); user+system CPU time per `run`; peak
# RSS of the runtime process (GNU time's %M; Debian package `time`); wall time of 20
# containers run concurrently. Ratios: other / berth (higher = berth faster or smaller).
# Results also go to bench/results/runtime-<date>.md (gitignored).
set -euo pipefail

N=${N:-100}
PARTS=${PARTS:-time,rss,concurrent}
CONCURRENT=${CONCURRENT:-20}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
[ "$(id -u)" -eq 0 ] || { echo "error: run as root (containers need it)" >&2; exit 1; }
for tool in runc crun busybox python3 /usr/bin/time; do
    command -v "$tool" >/dev/null 2>&1 || {
        echo "error: $tool is not installed; hint: scripts/test installs the test tools" >&2
        exit 1
    }
done

if [ -n "${BERTH_RUNTIME_BIN:-}" ]; then
    BERTH=$BERTH_RUNTIME_BIN
else
    echo "building berth-runtime (scripts/build-runtime: the installed build)" >&2
    BERTH=$(scripts/build-runtime)
fi

STATE=${STATE:-disk}
case "$STATE" in
    disk) WORK=$(mktemp -d /var/tmp/berth-runtime-bench.XXXXXX) ;;
    tmpfs) WORK=$(mktemp -d /dev/shm/berth-runtime-bench.XXXXXX) ;;
    *) echo "error: STATE must be disk or tmpfs, not $STATE" >&2; exit 1 ;;
esac
echo "state and bundle in $WORK ($(stat -f -c %T "$WORK"))" >&2
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/bundle/rootfs/bin" "$WORK/bundle/rootfs/proc" "$WORK/bundle/rootfs/dev" "$WORK/bundle/rootfs/sys"
cp "$(command -v busybox)" "$WORK/bundle/rootfs/bin/busybox"
ln -s busybox "$WORK/bundle/rootfs/bin/true"
ln -s busybox "$WORK/bundle/rootfs/bin/sh"
# runc's config (no seccomp profile), as the numbers in docs/performance.md were measured
(cd "$WORK/bundle" && "$BERTH" spec --runc-compat)
python3 - "$WORK/bundle/config.json" <<'PY'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
c["process"]["args"] = ["/bin/true"]
c["process"]["terminal"] = False
c["ociVersion"] = "1.0.2"  # what Debian's crun 1.8 still accepts
c["process"]["capabilities"].pop("ambient", None)  # runc 1.1 lists them; no runtime raises them
json.dump(c, open(p, "w"), indent=2)
PY

python3 - "$WORK" "$N" "$CONCURRENT" "$BERTH" "$PARTS" "${BERTH_BASELINE_BIN:-}" "$STATE" <<'PY'
import os, random, resource, statistics, subprocess, sys, time, datetime, shutil, concurrent.futures

work, n, conc, berth = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
parts, baseline, state = set(sys.argv[5].split(",")), sys.argv[6], sys.argv[7]
unknown = parts - {"time", "rss", "concurrent"}
if unknown:
    sys.exit(f"error: unknown PARTS {sorted(unknown)}; hint: any of time, rss, concurrent")
bundle = os.path.join(work, "bundle")
runtimes = {"berth-runtime": berth, "runc": shutil.which("runc"), "crun": shutil.which("crun")}
if baseline:
    runtimes["berth-baseline"] = baseline
# container ids unique per runtime (their cgroups share the hierarchy)
tag = {name: f"r{j}" for j, name in enumerate(runtimes)}

def version(b):
    out = subprocess.run([b, "--version"], capture_output=True, text=True).stdout
    return out.splitlines()[0] if out else "?"

log = open(os.path.join(work, "runtime-errors.log"), "ab")

def rt(name, *args, check=True):
    # stderr to a file, not a pipe: a created container inherits it and holds it open
    root = os.path.join(work, "root-" + name)
    return subprocess.run([runtimes[name], "--root", root, *args],
                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=log, check=check)

def timed(fn):
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    fn()
    t1 = time.perf_counter()
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return t1 - t0, cpu

orders = {}
shuffle = random.Random(int(os.environ.get("SEED", "1")))
def order(i):
    # ABBA over a fresh random order every two rounds: each runtime runs first and last as
    # often as the others, and follows each of the others as often. (A fixed ABBA order puts
    # one runtime after runc every other round and another never: runc's slow cgroup and
    # namespace teardown, still running in the kernel, cost whoever came next about 10 %.)
    if i // 2 not in orders:
        orders[i // 2] = shuffle.sample(list(runtimes), len(runtimes))
    names = orders[i // 2]
    return names if i % 2 == 0 else names[::-1]

res = {k: {"run": [], "cycle": [], "cpu": []} for k in runtimes}
rss = {}
for i in range(n if "time" in parts else 0):
    for name in order(i):
        cid = f"b{tag[name]}-{i}"
        wall, cpu = timed(lambda: rt(name, "run", "--bundle", bundle, cid))
        res[name]["run"].append(wall)
        res[name]["cpu"].append(cpu)
        cid2 = f"c{tag[name]}-{i}"
        def cycle():
            rt(name, "create", "--bundle", bundle, cid2)
            rt(name, "start", cid2)
            for _ in range(2000):
                st = subprocess.run([runtimes[name], "--root", os.path.join(work, "root-" + name), "state", cid2],
                                    stdin=subprocess.DEVNULL, capture_output=True, text=True)
                if '"stopped"' in st.stdout:
                    break
            rt(name, "delete", cid2)
        wall, _ = timed(cycle)
        res[name]["cycle"].append(wall)

# peak RSS: GNU time's %M per run (measured through time's own small fork, since a child
# forked from this Python carries Python's high-water mark across exec); the median of 15
# interleaved runs, as one run varies by ±0.1 MiB
rss_runs = {name: [] for name in runtimes}
for i in range(15 if "rss" in parts else 0):
    for name in order(i):
        out = subprocess.run(["/usr/bin/time", "-f", "%M", runtimes[name], "--root",
                              os.path.join(work, "root-" + name), "run", "--bundle", bundle,
                              f"rss-{name}-{i}"],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True, check=True)
        rss_runs[name].append(int(out.stderr.strip().splitlines()[-1]) / 1024)
for name in runtimes:
    if rss_runs[name]:
        rss[name] = statistics.median(rss_runs[name])

conc_runs = {name: [] for name in runtimes}
for i in range(4 if "concurrent" in parts else 0):
    for name in order(i):
        def many():
            with concurrent.futures.ThreadPoolExecutor(conc) as ex:
                list(ex.map(lambda j: rt(name, "run", "--bundle", bundle, f"p{tag[name]}-{i}-{j}"), range(conc)))
        conc_runs[name].append(timed(many)[0])
conc_wall = {name: statistics.median(v) for name, v in conc_runs.items() if v}

nan = float("nan")
def med(v): return statistics.median(v) * 1000 if v else nan
def p90(v): return sorted(v)[max(int(len(v) * 0.9) - 1, 0)] * 1000 if v else nan
def fmt(v, digits): return "–" if v != v else f"{v:.{digits}f}"
lines = [f"# berth-runtime vs runc and crun — {datetime.date.today()}", "",
         "- " + "; ".join(f"{k}: {version(b)}" for k, b in runtimes.items()),
         f"- N={n} sequential containers per runtime, interleaved ABBA; {conc} concurrent (median of 4 rounds); state and bundle on {state}; {os.cpu_count()} CPUs", "",
         f"| runtime | run median ms | run p90 ms | create+start+delete median ms | CPU ms per run | peak RSS MiB | {conc} concurrent s |",
         "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
for k in runtimes:
    r = res[k]
    cells = [med(r['run']), p90(r['run']), med(r['cycle']), med(r['cpu']), rss.get(k, nan), conc_wall.get(k, nan)]
    lines.append(f"| {k} | " + " | ".join(fmt(v, d) for v, d in zip(cells, (1, 1, 1, 1, 2, 2))) + " |")
b = res["berth-runtime"]
lines += ["", f"Ratios (other / berth-runtime; higher = berth faster or smaller; parts: {','.join(sorted(parts))}):", ""]
for k in [k for k in runtimes if k != "berth-runtime"]:
    ratios = [("run", med(res[k]['run']) / med(b['run'])),
              ("create+start+delete", med(res[k]['cycle']) / med(b['cycle'])),
              ("CPU", med(res[k]['cpu']) / max(med(b['cpu']), 1e-9)),
              ("peak RSS", rss.get(k, nan) / rss.get('berth-runtime', nan)),
              ("concurrent", conc_wall.get(k, nan) / conc_wall.get('berth-runtime', nan))]
    lines.append(f"- {k}: " + ", ".join(f"{what} {v:.2f}×" for what, v in ratios if v == v))
text = "\n".join(lines) + "\n"
print(text)
os.makedirs("bench/results", exist_ok=True)
open(f"bench/results/runtime-{datetime.date.today()}-{state}.md", "w").write(text)
PY
