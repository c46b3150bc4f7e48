#!/usr/bin/env python3
"""Render the security-defaults table of docs/security.md from probe reports.

    security-defaults.py berth.json podman.json docker.json host.json [NOTE...]

Each JSON file is one probe report (tests/probe) made inside a default container of that
engine (host.json: outside any container, a baseline). Prints a markdown table with a last
column saying, per row, whether berth's cell is stricter than or equal to both peers'
("yes"), or not ("NO: ..."). Exits 1 if any row says NO, so a regression cannot hide.
"""

import json
import sys

UNLIMITED = 2**64 - 1
# the syscall attempts scripts/security-defaults.sh makes, in order: (probe step, label)
SYSCALLS = [
    ("mount-tmpfs:/mnt", "`mount` (tmpfs)"),
    ("syscall:272:268435456", "`unshare(CLONE_NEWUSER)`"),
    ("syscall:272:131072", "`unshare(CLONE_NEWNS)`"),
    ("syscall:308:-1:0", "`setns`"),
    ("syscall:250:0:-3:0", "`keyctl` (session keyring id)"),
    ("syscall:101:12:2147483647", "`ptrace` (GETREGS of no such pid)"),
    ("syscall:321:0:0:0", "`bpf`"),
    ("syscall:298:0:0:0:-1:0", "`perf_event_open`"),
    ("syscall:425:0:0", "`io_uring_setup`"),
    ("syscall:435:0:0", "`clone3`"),
]
DENIED = {"EPERM", "EACCES", "ENOSYS"}


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def short(caps):
    return [c.removeprefix("CAP_") for c in caps]


def cap_cell(caps):
    if not caps:
        return "none"
    if len(caps) > 20:
        return f"{len(caps)} (all)"
    return f"{len(caps)}: " + ", ".join(sorted(short(caps)))


def outcome(v):
    if not isinstance(v, dict):
        return None
    if v.get("ok"):
        return "ok"
    return v.get("errno_name") or "error"


def syscall_cell(v):
    o = outcome(v)
    if o is None:
        return "not measured"
    if o in DENIED:
        return f"denied ({o})"
    return f"reaches the kernel ({o})"


def host_id(m, cid):
    for r in m or []:
        if r["inside"] <= cid < r["inside"] + r["length"]:
            return r["outside"] + cid - r["inside"]
    return None


def id_map_entries(raw):
    """identity's uid_map: a list of {inside, outside, length} (or the probe's own shape)."""
    out = []
    for r in raw or []:
        if isinstance(r, dict):
            out.append(
                {
                    "inside": r.get("inside", r.get("container_id", 0)),
                    "outside": r.get("outside", r.get("host_id", 0)),
                    "length": r.get("length", r.get("size", 0)),
                }
            )
        elif isinstance(r, list) and len(r) == 3:
            out.append({"inside": r[0], "outside": r[1], "length": r[2]})
    return out


def mounts(rep):
    m = rep.get("mounts")
    if isinstance(m, dict):
        m = m.get("mounts", [])
    return m or []


def masked(rep):
    out = set()
    for m in mounts(rep):
        p = m["mount_point"]
        if not (p.startswith("/proc/") or p.startswith("/sys/")):
            continue
        if p.startswith("/sys/fs/cgroup"):
            continue
        if m["fs_type"] not in ("proc", "sysfs"):
            out.add(p)
    return out


def readonly(rep):
    out = set()
    for m in mounts(rep):
        p = m["mount_point"]
        if p.startswith("/proc/") and m["fs_type"] == "proc" and "ro" in m["options"]:
            out.add(p)
    return out


FLAGS = ("ro", "nosuid", "nodev", "noexec")


def flags(rep, point):
    for m in reversed(mounts(rep)):
        if m["mount_point"] == point:
            return {o for o in m["options"] if o in FLAGS}, m["fs_type"]
    return None, None


def flag_cell(rep, point):
    f, t = flags(rep, point)
    if f is None:
        return "absent"
    return f"{t} " + (",".join(o for o in FLAGS if o in f) or "rw")


def dev(rep):
    v = rep.get("list:/dev", {})
    return set(v.get("entries", [])) if isinstance(v, dict) else set()


def rl(rep, name):
    v = rep.get("rlimits", {}).get(name, {})
    return v.get("soft"), v.get("hard")


def rl_cell(rep, name):
    s, h = rl(rep, name)
    if s is None:
        return "?"
    fmt = lambda n: "unlimited" if n == UNLIMITED else str(n)
    return f"{fmt(s)}/{fmt(h)}"


def paths_cell(s):
    return "<br>".join(sorted(s)) if s else "none"


def main():
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    berth, podman, docker, host = (load(p) for p in sys.argv[1:5])
    peers = {"podman": podman, "docker": docker}
    rows = []  # (label, [cells], verdict)

    def verdict(ok_by_peer):
        bad = [p for p, ok in ok_by_peer.items() if not ok]
        return "yes" if not bad else "NO: looser than " + " and ".join(bad)

    def row(label, cell, ok):
        rows.append(
            (label, [cell(r) for r in (berth, podman, docker, host)], verdict({p: ok(r) for p, r in peers.items()}))
        )

    for s in ("effective", "bounding", "permitted"):
        row(
            f"capabilities: {s} (root)",
            lambda r, s=s: cap_cell(r["caps"][s]),
            lambda r, s=s: set(berth["caps"][s]) <= set(r["caps"][s]),
        )
    row(
        "capabilities: ambient, inheritable",
        lambda r: cap_cell(r["caps"]["ambient"]) + " / " + cap_cell(r["caps"]["inheritable"]),
        lambda r: set(berth["caps"]["ambient"]) <= set(r["caps"]["ambient"])
        and set(berth["caps"]["inheritable"]) <= set(r["caps"]["inheritable"]),
    )
    row("no_new_privs", lambda r: "on" if r["nnp"] else "off", lambda r: berth["nnp"] or not r["nnp"])
    row(
        "seccomp",
        lambda r: f"{r['seccomp']['mode_name']} ({r['seccomp'].get('filters')} filter)"
        if r["seccomp"]["mode"] == 2
        else r["seccomp"]["mode_name"],
        lambda r: berth["seccomp"]["mode"] == 2 or r["seccomp"]["mode"] != 2,
    )
    for step, label in SYSCALLS:
        row(
            label,
            lambda r, step=step: syscall_cell(r.get(step)),
            lambda r, step=step: outcome(berth.get(step)) in DENIED or outcome(r.get(step)) not in DENIED,
        )

    def ids(r):
        i = r["identity"]
        um, gm = id_map_entries(i["uid_map"]), id_map_entries(i["gid_map"])
        return i["uid"], i["gid"], host_id(um, i["uid"]), host_id(gm, i["gid"])

    row("uid/gid inside", lambda r: "%s/%s" % ids(r)[:2], lambda r: True)
    row(
        "… on the host (user namespace)",
        lambda r: "%s/%s" % ids(r)[2:],
        lambda r: ids(berth)[2] != 0 or ids(r)[2] == 0,
    )
    row("masked paths", lambda r: paths_cell(masked(r)), lambda r: masked(berth) >= masked(r))
    row("read-only paths", lambda r: paths_cell(readonly(r)), lambda r: readonly(berth) >= readonly(r))
    for point in ("/proc", "/sys", "/sys/fs/cgroup"):
        row(
            f"`{point}` mount",
            lambda r, point=point: flag_cell(r, point),
            lambda r, point=point: (flags(berth, point)[0] or set()) >= (flags(r, point)[0] or set()),
        )
    row(
        "`/dev` entries",
        lambda r: f"{len(dev(r))}: " + " ".join(sorted(dev(r))) if len(dev(r)) <= 30 else f"{len(dev(r))} (the host's)",
        lambda r: dev(berth) <= dev(r),
    )
    def pids_max(r):
        # cgroup v1's pids hierarchy, or v2's unified one
        t = ""
        for k in ("read:/sys/fs/cgroup/pids/pids.max", "read:/sys/fs/cgroup/pids.max"):
            v = r.get(k, {})
            if isinstance(v, dict) and v.get("ok"):
                t = v.get("head", "").strip()
                break
        return int(t) if t.isdigit() else (UNLIMITED if t == "max" else None)

    row(
        "pids limit (cgroup `pids.max`)",
        lambda r: {None: "not visible", UNLIMITED: "none"}.get(pids_max(r), str(pids_max(r))),
        lambda r: None not in (pids_max(berth), pids_max(r)) and pids_max(berth) <= pids_max(r),
    )
    names = sorted(host.get("rlimits", {}))
    shown = [
        n
        for n in names
        if n in ("RLIMIT_NOFILE", "RLIMIT_NPROC")
        or len({json.dumps(x.get("rlimits", {}).get(n)) for x in (berth, podman, docker, host)}) > 1
    ]

    def not_looser(r, n):
        bs, bh = rl(berth, n)
        ps, ph = rl(r, n)
        return None not in (bs, bh, ps, ph) and bs <= ps and bh <= ph

    for n in shown:
        row(f"`{n}` soft/hard", lambda r, n=n: rl_cell(r, n), lambda r, n=n: not_looser(r, n))

    print("| | berth | podman | docker | host (no container) | berth ≤ peers |")
    print("| --- | --- | --- | --- | --- | --- |")
    for label, cells, v in rows:
        print(f"| {label} | " + " | ".join(cells) + f" | {v} |")
    for note in sys.argv[5:]:
        print()
        print(note)
    sys.exit(1 if any(v != "yes" for _, _, v in rows) else 0)


if __name__ == "__main__":
    main()
