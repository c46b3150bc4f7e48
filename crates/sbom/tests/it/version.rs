//! Version orders against their reference implementations (issue 21 §2).
//!
//! Each order is run against the real comparator on thousands of pairs: versions generated
//! from the ecosystem's grammar (deterministic seeds; epochs, `~`, letters, leading zeros,
//! long digit runs, pre-releases, and near-misses made by mutating a valid version), plus
//! real version strings found on this machine. Every disagreement fails the test with the
//! pair, ours and the reference's answer.
//!
//! | order | reference | how the test reaches it |
//! |---|---|---|
//! | dpkg | `dpkg --compare-versions` (C) and Perl's `Dpkg::Version` | `sh` loop; one `perl` |
//! | rpm | rpm's `rpm.vercmp` (rpm 4.18, Debian package `rpm`) | one `rpm --eval` Lua loop |
//! | PEP 440 | `packaging.version.Version`: Debian's `python3-packaging` 23 and packaging 26 | one `python3` each |
//! | SemVer | node-semver (Debian `node-semver`, `/usr/share/nodejs/semver`) | one `node` |
//! | Maven | `ComparableVersion.main` (Debian `libmaven3-core-java`) | one `java` |
//! | apk | berth's vectors from apk-tools' `version.c` rules (no apk-tools on Debian) + order properties | — |
//!
//! A missing reference fails the test with the package that provides it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr,
    reason = "tests fail by panicking, helpers included, and report their pair counts"
)]

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use berth_sbom::package::Ecosystem;
use berth_sbom::version::{MavenVersion, Version, compare};

/// SplitMix64: a deterministic generator, so every run tests the same pairs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
    fn char_from(&mut self, alphabet: &str) -> char {
        let b = alphabet.as_bytes();
        b[self.below(b.len())] as char
    }
    /// A run of digits: usually short, sometimes with leading zeros, sometimes very long.
    fn digits(&mut self) -> String {
        let mut s = String::new();
        if self.chance(10) {
            s.push_str(self.pick(&["0", "00", "000"]));
        }
        let len = if self.chance(5) {
            15 + self.below(15)
        } else {
            1 + self.below(3)
        };
        for _ in 0..len {
            s.push(self.char_from("0123456789"));
        }
        s
    }
    /// A near-miss of `v`: one character inserted, removed or replaced, or a common tail.
    fn mutate(&mut self, v: &str, alphabet: &str, tails: &[&str]) -> String {
        let mut c: Vec<char> = v.chars().collect();
        match self.below(6) {
            0 if !c.is_empty() => {
                let i = self.below(c.len());
                c.remove(i);
            }
            1 if !c.is_empty() => {
                let i = self.below(c.len());
                c[i] = self.char_from(alphabet);
            }
            2 => {
                let i = self.below(c.len() + 1);
                c.insert(i, self.char_from(alphabet));
            }
            3 if !c.is_empty() => {
                // Bump a digit.
                if let Some(i) = c.iter().rposition(|d| d.is_ascii_digit()) {
                    c[i] = if c[i] == '9' {
                        '0'
                    } else {
                        (c[i] as u8 + 1) as char
                    };
                }
            }
            _ => c.extend(self.pick(tails).chars()),
        }
        c.into_iter().collect()
    }
}

/// Pairs from a generator: half independent versions, half a version and a near-miss.
fn pairs(
    rng: &mut Rng,
    n: usize,
    mut generate: impl FnMut(&mut Rng) -> String,
    alphabet: &str,
    tails: &[&str],
) -> Vec<(String, String)> {
    (0..n)
        .map(|_| {
            let a = generate(rng);
            let b = if rng.chance(50) {
                let base = if rng.chance(50) {
                    a.clone()
                } else {
                    generate(rng)
                };
                let mut b = rng.mutate(&base, alphabet, tails);
                if rng.chance(30) {
                    b = rng.mutate(&b, alphabet, tails);
                }
                b
            } else {
                generate(rng)
            };
            if rng.chance(50) { (a, b) } else { (b, a) }
        })
        .collect()
}

/// Pairs of real versions: neighbours in a sorted list and random couples.
fn real_pairs(rng: &mut Rng, versions: &[String], n: usize) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = versions
        .windows(2)
        .map(|w| (w[0].clone(), w[1].clone()))
        .collect();
    if versions.len() > 1 {
        for _ in 0..n {
            let a = versions[rng.below(versions.len())].clone();
            let b = versions[rng.below(versions.len())].clone();
            out.push((a, b));
        }
    }
    out
}

/// Run a reference tool with `input` on stdin; its stdout lines. A missing tool fails the
/// test with `hint`.
fn run(program: &str, args: &[&str], input: &str, hint: &str) -> Vec<String> {
    let child = Command::new(program)
        .args(args)
        // Debian's node modules (node-semver and what it requires) for any `node`.
        .env("NODE_PATH", "/usr/share/nodejs")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => panic!("cannot run the reference `{program}`: {e}\nhint: {hint}"),
    };
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let input = input.to_owned();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().expect("wait for the reference");
    let written = writer.join().expect("writer thread");
    assert!(
        out.status.success(),
        "the reference `{program} {args:?}` failed ({}): {}\nhint: {hint}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    written.expect("write the pairs to the reference");
    String::from_utf8(out.stdout)
        .expect("the reference writes UTF-8")
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The reference's answer for one pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// Which of the two it refuses.
    Invalid(bool, bool),
    Order(Ordering),
}

/// Our answer, in the same terms.
fn ours(ecosystem: Ecosystem, a: &str, b: &str) -> Answer {
    let (va, vb) = (Version::parse(ecosystem, a), Version::parse(ecosystem, b));
    match (va, vb) {
        (Ok(va), Ok(vb)) => {
            let o = va.cmp(&vb);
            assert_eq!(
                compare(ecosystem, a, b).ok(),
                Some(o),
                "compare and Ord differ"
            );
            assert_eq!(vb.cmp(&va), o.reverse(), "not antisymmetric: {a:?} {b:?}");
            Answer::Order(o)
        }
        (va, vb) => Answer::Invalid(va.is_err(), vb.is_err()),
    }
}

/// Parse the reference's lines: `<valid a> <valid b> <cmp>` (`1 1 -1`, `0 1 x`).
fn answers(lines: &[String]) -> Vec<Answer> {
    lines
        .iter()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            match f.as_slice() {
                ["1", "1", c] => Answer::Order(match *c {
                    "-1" => Ordering::Less,
                    "0" => Ordering::Equal,
                    "1" => Ordering::Greater,
                    _ => panic!("unexpected reference answer {l:?}"),
                }),
                [a, b, _] => Answer::Invalid(*a == "0", *b == "0"),
                _ => panic!("unexpected reference line {l:?}"),
            }
        })
        .collect()
}

/// Compare ours with the reference on every pair; fail listing the disagreements.
fn agree(
    what: &str,
    ecosystem: Ecosystem,
    pairs: &[(String, String)],
    reference: &[Answer],
) -> usize {
    assert_eq!(
        pairs.len(),
        reference.len(),
        "{what}: the reference answered {} of {} pairs",
        reference.len(),
        pairs.len()
    );
    let mut wrong = Vec::new();
    let mut ordered = 0;
    for ((a, b), want) in pairs.iter().zip(reference) {
        let got = ours(ecosystem, a, b);
        if matches!(want, Answer::Order(_)) {
            ordered += 1;
        }
        if got != *want {
            wrong.push(format!("{a:?} vs {b:?}: berth {got:?}, reference {want:?}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "{what}: {} of {} pairs disagree:\n{}",
        wrong.len(),
        pairs.len(),
        wrong
            .iter()
            .take(40)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        ordered * 10 > pairs.len() * 3,
        "{what}: only {ordered} of {} pairs were valid (under 30%); the generator is off",
        pairs.len()
    );
    eprintln!(
        "{what}: {} pairs agree ({ordered} ordered, {} refused by both)",
        pairs.len(),
        pairs.len() - ordered
    );
    pairs.len()
}

fn tsv(pairs: &[(String, String)]) -> String {
    pairs.iter().map(|(a, b)| format!("{a}\t{b}\n")).collect()
}

// ---------------------------------------------------------------------------------------
// dpkg

fn dpkg_version(r: &mut Rng) -> String {
    let mut s = String::new();
    let epoch = r.chance(25);
    if epoch {
        s.push_str(r.pick(&["0", "1", "2", "10", "00", "01", "2147483647"]));
        s.push(':');
    }
    let revision = r.chance(60);
    if r.chance(95) {
        s.push_str(&r.digits());
    } else {
        s.push(r.char_from("abzAZ"));
    }
    let mut seps = String::from(".+~");
    if revision {
        seps.push('-');
    }
    if epoch {
        seps.push(':');
    }
    for _ in 0..r.below(6) {
        match r.below(3) {
            0 => s.push_str(&r.digits()),
            1 => {
                for _ in 0..1 + r.below(3) {
                    s.push(r.char_from("abrcxzABZ"));
                }
            }
            _ => s.push(r.char_from(&seps)),
        }
    }
    if revision {
        s.push('-');
        if r.chance(80) {
            s.push_str(&r.digits());
        } else {
            s.push(r.char_from("abz"));
        }
        for _ in 0..r.below(4) {
            match r.below(3) {
                0 => s.push_str(&r.digits()),
                1 => s.push_str(r.pick(&["deb", "ubuntu", "bpo", "u", "build", "a", "Z"])),
                _ => s.push(r.char_from(".+~")),
            }
        }
    }
    s
}

const DPKG_ALPHABET: &str = "0123456789.+~-:abzAZ";
const DPKG_TAILS: &[&str] = &[
    "~", "~rc1", ".0", "a", "+b1", "-1", "-0", "~~", "+deb12u1", "0",
];

fn installed_dpkg_versions() -> Vec<String> {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f", "${Version}\n"])
        .output()
        .expect("run dpkg-query (hint: this test runs on Debian)");
    let set: BTreeSet<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    set.into_iter().collect()
}

/// Perl's `Dpkg::Version` (libdpkg-perl): `version_compare` after `version_check`.
const DPKG_PERL: &str = r#"
use strict; use warnings;
use Dpkg::Version qw(version_check version_compare);
while (my $l = <STDIN>) {
    chomp $l;
    my ($a, $b) = split /\t/, $l, 2;
    my ($va, $vb) = (version_check($a) ? 1 : 0, version_check($b) ? 1 : 0);
    print "$va $vb ", ($va && $vb ? version_compare($a, $b) : "x"), "\n";
}
"#;

/// dpkg itself: exit status 0 (true), 1 (false), 2 (bad syntax).
const DPKG_SH: &str = r#"
while IFS="$(printf '\t')" read -r a b; do
    dpkg --compare-versions "$a" lt "$b" 2>/dev/null; r=$?
    if [ $r = 0 ]; then echo "1 1 -1"
    elif [ $r = 1 ]; then
        if dpkg --compare-versions "$a" eq "$b" 2>/dev/null; then echo "1 1 0"; else echo "1 1 1"; fi
    else
        dpkg --compare-versions "$a" eq "$a" 2>/dev/null; va=$(( $? == 2 ? 0 : 1 ))
        dpkg --compare-versions "$b" eq "$b" 2>/dev/null; vb=$(( $? == 2 ? 0 : 1 ))
        echo "$va $vb x"
    fi
done
"#;

#[test]
fn dpkg_order_matches_dpkg_on_generated_and_installed_versions() {
    let mut rng = Rng(0xdeb1a4);
    let mut ps = pairs(&mut rng, 12_000, dpkg_version, DPKG_ALPHABET, DPKG_TAILS);
    let installed = installed_dpkg_versions();
    assert!(
        installed.len() > 50,
        "dpkg-query listed {} versions",
        installed.len()
    );
    ps.extend(real_pairs(&mut rng, &installed, 3_000));
    // Perl's Dpkg::Version differs from dpkg's C parser and comparator where it (1) compares
    // digit runs as Perl numbers (doubles: runs beyond 15 digits compare equal), (2) reads
    // epochs above 2147483647 and a trailing ':' that dpkg refuses, and (3) refuses what dpkg
    // only warns about. Pairs of kinds (1) and (2), and those it refuses, go to dpkg itself.
    let perl_exact = |v: &str| {
        let longest_run = v
            .split(|c: char| !c.is_ascii_digit())
            .map(str::len)
            .max()
            .unwrap_or(0);
        longest_run < 10 && !v.ends_with(':')
    };
    let (for_perl, for_dpkg): (Vec<_>, Vec<_>) = ps
        .iter()
        .cloned()
        .partition(|(a, b)| perl_exact(a) && perl_exact(b));
    let hint = "install the Debian package libdpkg-perl";
    let perl = answers(&run("perl", &["-e", DPKG_PERL], &tsv(&for_perl), hint));
    let accepted: Vec<_> = for_perl
        .iter()
        .zip(&perl)
        .filter(|(_, a)| matches!(a, Answer::Order(_)))
        .map(|(p, a)| (p.clone(), *a))
        .collect();
    let (p, a): (Vec<_>, Vec<_>) = accepted.into_iter().unzip();
    let n_perl = agree("dpkg vs Dpkg::Version", Ecosystem::Debian, &p, &a);
    assert!(
        n_perl > 6_000,
        "only {n_perl} pairs valid for Dpkg::Version"
    );

    // dpkg itself (4 ms a call): the pairs above, those the Perl module refused (what dpkg
    // warns about or refuses), and a sample of the rest.
    let mut c: Vec<_> = for_dpkg.into_iter().take(1_000).collect();
    // Bytes above 0x7f: signed chars in dpkg, between letters and ASCII punctuation.
    c.extend(
        [
            ("1.0\u{e9}", "1.0a"),
            ("1.0\u{e9}", "1.0z"),
            ("1.0\u{e9}", "1.0+"),
            ("1.0\u{e9}", "1.0~"),
            ("1.0\u{e9}", "1.0\u{fc}"),
            ("1.0\u{7f}", "1.0\u{e9}"),
            ("1\u{20ac}", "1.0"),
            ("1:1.0-\u{e9}1", "1:1.0-a1"),
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned())),
    );
    c.extend(
        for_perl
            .iter()
            .zip(&perl)
            .filter(|(_, a)| !matches!(a, Answer::Order(_)))
            .map(|(p, _)| p.clone())
            .take(700),
    );
    c.extend(p.iter().step_by(40).take(300).cloned());
    // dpkg's command line reads an argument starting with '-' as an option, and a tab-split
    // `read` drops an empty field: those cannot be asked.
    c.retain(|(a, b)| [a, b].iter().all(|v| !v.is_empty() && !v.starts_with('-')));
    let dpkg = answers(&run("sh", &["-c", DPKG_SH], &tsv(&c), "dpkg is Debian's"));
    agree(
        "dpkg vs dpkg --compare-versions",
        Ecosystem::Debian,
        &c,
        &dpkg,
    );
}

// ---------------------------------------------------------------------------------------
// rpm

fn rpm_version(r: &mut Rng) -> String {
    let mut s = String::new();
    if r.chance(25) {
        s.push_str(r.pick(&["0", "1", "2", "10", "00", ""]));
        s.push(':');
    }
    let part = |r: &mut Rng, s: &mut String, n: usize| {
        for k in 0..n {
            match r.below(4) {
                0 | 1 => s.push_str(&r.digits()),
                2 => s.push_str(r.pick(&["a", "b", "rc", "git", "el", "fc", "Z", "beta", "p"])),
                _ if k > 0 => s.push(r.char_from("._+~^~^")),
                _ => s.push_str(&r.digits()),
            }
        }
    };
    let n = 1 + r.below(6);
    part(r, &mut s, n);
    if r.chance(60) {
        s.push('-');
        let n = 1 + r.below(4);
        part(r, &mut s, n);
    }
    s
}

/// rpm's Lua `rpm.vercmp` over the pairs on stdin (rpm 4.18: `rpmverParse` + `rpmverCmp`).
const RPM_LUA: &str = r#"%{lua: for l in io.lines() do local a, b = l:match("^(.-)\t(.*)$"); print("1 1 " .. rpm.vercmp(a, b) .. "\n") end}"#;

#[test]
fn rpm_order_matches_rpm_vercmp() {
    let mut rng = Rng(0x52504d);
    let mut ps = pairs(
        &mut rng,
        20_000,
        rpm_version,
        "0123456789.-_~^:abzAZ",
        &["~", "^", "~rc1", "^git1", ".0", "a", "-1", ".1", "_1"],
    );
    // Real version strings (the installed Debian ones are also rpm-shaped).
    ps.extend(real_pairs(&mut rng, &installed_dpkg_versions(), 3_000));
    ps.retain(|(a, b)| !a.is_empty() && !b.is_empty());
    let out = run(
        "rpm",
        &["--eval", RPM_LUA],
        &tsv(&ps),
        "install the Debian package rpm (rpm 4.18's Lua rpm.vercmp is the reference)",
    );
    let lines: Vec<String> = out.into_iter().filter(|l| !l.is_empty()).collect();
    agree("rpm vs rpm.vercmp", Ecosystem::Rpm, &ps, &answers(&lines));
}

// ---------------------------------------------------------------------------------------
// PEP 440

fn pep440_version(r: &mut Rng) -> String {
    let mut s = String::new();
    if r.chance(5) {
        s.push(' ');
    }
    if r.chance(10) {
        s.push_str(r.pick(&["v", "V"]));
    }
    if r.chance(15) {
        s.push_str(&r.digits());
        s.push('!');
    }
    s.push_str(&r.digits());
    for _ in 0..r.below(4) {
        s.push('.');
        s.push_str(r.pick(&["0", "0", "1", "2", "10", "00"]));
    }
    let sep = |r: &mut Rng| r.pick(&["", "", ".", "-", "_"]);
    if r.chance(40) {
        s.push_str(sep(r));
        s.push_str(r.pick(&[
            "a", "b", "rc", "c", "alpha", "beta", "pre", "preview", "RC", "A", "Alpha",
        ]));
        s.push_str(sep(r));
        if r.chance(80) {
            s.push_str(&r.digits());
        }
    }
    if r.chance(30) {
        if r.chance(30) {
            s.push('-');
            s.push_str(&r.digits());
        } else {
            s.push_str(sep(r));
            s.push_str(r.pick(&["post", "rev", "r", "POST"]));
            s.push_str(sep(r));
            if r.chance(70) {
                s.push_str(&r.digits());
            }
        }
    }
    if r.chance(30) {
        s.push_str(sep(r));
        s.push_str(r.pick(&["dev", "DEV"]));
        s.push_str(sep(r));
        if r.chance(70) {
            s.push_str(&r.digits());
        }
    }
    if r.chance(20) {
        s.push('+');
        for k in 0..1 + r.below(3) {
            if k > 0 {
                s.push(r.char_from(".-_"));
            }
            s.push_str(r.pick(&["ubuntu", "abc", "ABC", "1", "01", "2", "z9", "cpu", "cu118"]));
        }
    }
    if r.chance(5) {
        s.push(' ');
    }
    s
}

const PEP440_PY: &str = r#"
import sys
from packaging.version import Version, InvalidVersion
def parse(s):
    try:
        return Version(s)
    except InvalidVersion:
        return None
for line in sys.stdin:
    a, b = line.rstrip("\n").split("\t")
    va, vb = parse(a), parse(b)
    if va is None or vb is None:
        print(int(va is not None), int(vb is not None), "x")
    else:
        print(1, 1, (va > vb) - (va < vb))
"#;

const PEP440_INSTALLED_PY: &str = r#"
import importlib.metadata as m
for d in m.distributions():
    print(d.version)
"#;

/// The two PEP 440 references: Debian 12's python3-packaging 23 under Debian's python3, and
/// packaging 26 in berth-sbom's venv (which `scripts/test` installs pinned).
#[test]
fn pep440_order_matches_python_packaging() {
    let debian = crate::tools::DEBIAN_PYTHON.to_owned();
    let venv = crate::tools::sbom_python();
    let debian_major = pep440_matches_packaging(
        &debian,
        "install the Debian package python3-packaging (scripts/test installs it)",
    );
    let venv_major = pep440_matches_packaging(
        &venv,
        "scripts/test's install_sbom_python pins packaging==26.4 in that venv",
    );
    assert!(
        debian_major < 26 && venv_major >= 26,
        "the two references should be packaging 23 ({debian}) and 26 ({venv}): \
         got {debian_major} and {venv_major}"
    );
}

/// berth's PEP 440 order against `packaging` under `python`; packaging's major version.
fn pep440_matches_packaging(python: &str, hint: &str) -> u32 {
    let mut rng = Rng(0x70657034);
    let mut ps = pairs(
        &mut rng,
        20_000,
        pep440_version,
        "0123456789.-_+!abcdeprvostABC",
        &[
            ".0", "a1", "rc1", ".post1", "-1", ".dev0", "+local", "+1", "c", ".r", "!",
        ],
    );
    // Python's whitespace (str.isspace) around a version.
    let spaces = [
        "1.0\u{1c}",
        "\u{1f}1.0",
        "1.0\u{85}",
        "1.0\u{3000}",
        "1.0\u{200b}",
        "\u{2028} 1.0",
        "1.0\u{180e}",
        "\u{feff}1.0",
        "1.0\u{a0}",
        "1.0\u{b}",
        "1.0\u{c}",
    ];
    ps.extend(spaces.iter().map(|e| (e.to_string(), "1.0".to_owned())));
    // Letters that Python's Unicode case folding matches to ASCII ones: versions for
    // packaging < 26, not for packaging 26 (`(?a:…)`) nor berth. Asked separately, so that
    // the test holds with Debian 12's packaging 23 too.
    let folds = [
        "1.0+\u{212a}",
        "1.0po\u{17f}t1",
        "1.0prev\u{131}ew1",
        "1.0+\u{130}",
        "1.0+\u{17f}",
    ];
    let fold_pairs: Vec<_> = folds
        .iter()
        .map(|e| (e.to_string(), "1.0".to_owned()))
        .collect();
    let packaging = run(
        python,
        &["-c", "import packaging; print(packaging.__version__)"],
        "",
        hint,
    );
    let major: u32 = packaging
        .first()
        .and_then(|v| v.split('.').next())
        .and_then(|m| m.parse().ok())
        .expect("packaging's version");
    let reference = answers(&run(python, &["-c", PEP440_PY], &tsv(&fold_pairs), hint));
    for (want, (v, _)) in reference.into_iter().zip(&fold_pairs) {
        assert!(
            Version::parse(Ecosystem::PyPI, v).is_err(),
            "{v:?} accepted"
        );
        if major >= 26 {
            assert_eq!(
                want,
                Answer::Invalid(true, false),
                "packaging {packaging:?} on {v:?}"
            );
        }
    }
    let mut installed = run(python, &["-c", PEP440_INSTALLED_PY], "", hint);
    installed.sort();
    installed.dedup();
    ps.extend(real_pairs(&mut rng, &installed, 1_000));
    let out = run(python, &["-c", PEP440_PY], &tsv(&ps), hint);
    let what = format!("PEP 440 vs packaging {} ({python})", packaging[0]);
    agree(&what, Ecosystem::PyPI, &ps, &answers(&out));
    major
}

// ---------------------------------------------------------------------------------------
// SemVer

const NODE_SEMVER: &str = "/usr/share/nodejs/semver";

/// node-semver's strict `parse` and `compare` (build metadata ignored).
const SEMVER_JS: &str = r#"
const semver = require(process.argv[1]);
const lines = require("fs").readFileSync(0, "utf8").split("\n");
const out = [];
for (const line of lines) {
    if (line === "") continue;
    const [a, b] = line.split("\t");
    const va = semver.parse(a), vb = semver.parse(b);
    out.push(va && vb ? `1 1 ${semver.compare(va, vb)}` : `${va ? 1 : 0} ${vb ? 1 : 0} x`);
}
process.stdout.write(out.join("\n") + "\n");
"#;

fn semver_version(r: &mut Rng, prefix: &[&str]) -> String {
    let mut s = String::from(r.pick(prefix));
    let num = |r: &mut Rng| -> String {
        match r.below(30) {
            0 => format!("0{}", r.below(10)),
            1..=3 => "0".into(),
            4..=6 => format!("{}", r.next() % (1 << 53)),
            _ => format!("{}", r.below(12)),
        }
    };
    s.push_str(&format!("{}.{}.{}", num(r), num(r), num(r)));
    if r.chance(50) {
        s.push('-');
        for k in 0..1 + r.below(4) {
            if k > 0 {
                s.push('.');
            }
            match r.below(4) {
                0 => s.push_str(&num(r)),
                1 => s.push_str(&format!("{}", 20_191_109_021_931u64 + r.below(100) as u64)),
                _ => s.push_str(r.pick(&[
                    "alpha",
                    "beta",
                    "rc",
                    "a",
                    "A",
                    "-",
                    "0a",
                    "x-y",
                    "daa7c04131f5",
                    "pre",
                    "Alpha",
                    "",
                ])),
            }
        }
    }
    if r.chance(20) {
        s.push('+');
        s.push_str(r.pick(&["incompatible", "build.1", "001", "sha.5114f85", "a-b", ""]));
    }
    s
}

fn semver_pairs(r: &mut Rng, prefix: &[&str], n: usize) -> Vec<(String, String)> {
    pairs(
        r,
        n,
        |r| semver_version(r, prefix),
        "0123456789.-+abrcA",
        &["-0", "-alpha", ".1", "-rc.1", "+b", "-1.2", "0", ".0"],
    )
}

/// Whether node-semver can read `v`'s major, minor and patch: it refuses numbers above
/// 2^53 - 1 (JavaScript's safe integers), which SemVer, cargo (2^64 - 1) and Go (no limit)
/// allow.
fn node_safe(v: &str) -> bool {
    let v = v.strip_prefix('v').unwrap_or(v);
    let core = v.split(['-', '+']).next().unwrap_or(v);
    core.split('.')
        .all(|n| n.len() < 16 || n.parse::<u64>().map_or(true, |n| n < 1 << 53))
}

fn node_semver(ps: &[(String, String)]) -> Vec<Answer> {
    assert!(
        Path::new(NODE_SEMVER).join("package.json").is_file(),
        "node-semver is not at {NODE_SEMVER}\nhint: install the Debian package node-semver"
    );
    answers(&run(
        "node",
        &["-e", SEMVER_JS, NODE_SEMVER],
        &tsv(ps),
        "install node (Debian package nodejs) and node-semver",
    ))
}

#[test]
fn semver_orders_match_node_semver() {
    let mut rng = Rng(0x53656d56);
    // npm: node-semver is npm's own parser.
    let mut npm = semver_pairs(
        &mut rng,
        &["", "", "", "", "", "", "v", "V", "=", " "],
        8_000,
    );
    let mut installed = Vec::new();
    let modules = std::fs::read_dir("/usr/share/nodejs").unwrap_or_else(|e| {
        panic!("cannot read /usr/share/nodejs: {e}\nhint: install the Debian package node-semver")
    });
    for entry in modules {
        let pkg = entry.expect("entry").path().join("package.json");
        if let Ok(text) = std::fs::read_to_string(&pkg) {
            let json: serde_json::Value = serde_json::from_str(&text).expect("package.json");
            if let Some(v) = json["version"].as_str() {
                installed.push(v.to_owned());
            }
        }
    }
    // Spellings seen in published package.json files, beside the installed ones.
    installed.extend(["7.3.5", "7.3.9", "1.0.0-beta.11", "0.0.0-development"].map(String::from));
    npm.extend(real_pairs(&mut rng, &installed, 200));
    let reference = node_semver(&npm);
    agree("npm vs node-semver", Ecosystem::Npm, &npm, &reference);

    // crates.io: the strict grammar, the same precedence.
    let mut cargo = semver_pairs(&mut rng, &[""], 6_000);
    cargo.retain(|(a, b)| node_safe(a) && node_safe(b));
    let reference = node_semver(&cargo);
    agree(
        "crates.io vs node-semver",
        Ecosystem::CratesIo,
        &cargo,
        &reference,
    );

    // Go: with its `v`; node-semver reads `v` too. Pseudo-versions and +incompatible are in
    // the generator.
    let mut go = semver_pairs(&mut rng, &["v"], 6_000);
    go.retain(|(a, b)| node_safe(a) && node_safe(b));
    go.extend(
        [
            (
                "v0.0.0-20191109021931-daa7c04131f5",
                "v0.0.0-20191109021932-aaa7c04131f5",
            ),
            ("v1.2.4-0.20191109021931-daa7c04131f5", "v1.2.3"),
            ("v1.2.4-0.20191109021931-daa7c04131f5", "v1.2.4-pre"),
            ("v2.0.0+incompatible", "v2.0.0"),
            ("v2.0.0+incompatible", "v2.0.1"),
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned())),
    );
    let reference = node_semver(&go);
    agree("Go vs node-semver", Ecosystem::Go, &go, &reference);
}

// ---------------------------------------------------------------------------------------
// Maven

const MAVEN_ARTIFACT: &str = "/usr/share/java/maven3-artifact.jar";

fn maven_version(r: &mut Rng) -> String {
    let mut s = String::new();
    for k in 0..1 + r.below(6) {
        if k > 0 && r.chance(85) {
            s.push(r.char_from(".-.-."));
        }
        if r.chance(60) {
            s.push_str(&r.digits());
        } else {
            s.push_str(r.pick(&[
                "alpha",
                "beta",
                "milestone",
                "rc",
                "cr",
                "snapshot",
                "SNAPSHOT",
                "ga",
                "final",
                "Final",
                "release",
                "sp",
                "a",
                "b",
                "m",
                "foo",
                "xyz",
                "RC",
                "",
                "jre",
                "android",
            ]));
        }
    }
    s
}

fn installed_maven_versions() -> Vec<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![std::path::PathBuf::from("/usr/share/maven-repo")];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "pom")
                && let Some(v) = dir.file_name().and_then(|n| n.to_str())
            {
                out.insert(v.to_owned());
            }
        }
    }
    out.into_iter().collect()
}

#[test]
fn maven_order_matches_comparable_version() {
    let hint = "install the Debian packages default-jre-headless and libmaven3-core-java \
                (/usr/share/java/maven3-artifact.jar)";
    assert!(
        Path::new(MAVEN_ARTIFACT).is_file(),
        "{MAVEN_ARTIFACT} is missing\nhint: {hint}"
    );
    let mut rng = Rng(0x004d_766e);
    let mut ps = pairs(
        &mut rng,
        12_000,
        maven_version,
        "0123456789.-abcrsAZ",
        &[
            "-SNAPSHOT",
            ".0",
            "-1",
            ".Final",
            "-rc1",
            "a1",
            "-sp",
            "-0",
            ".",
        ],
    );
    let installed = installed_maven_versions();
    assert!(
        installed.len() > 20,
        "found {} versions under /usr/share/maven-repo",
        installed.len()
    );
    ps.extend(real_pairs(&mut rng, &installed, 1_000));
    // Versions with whitespace or ';' would make ComparableVersion.main's output ambiguous;
    // empty arguments are dropped by nothing but read back badly.
    ps.retain(|(a, b)| {
        [a, b]
            .iter()
            .all(|v| !v.is_empty() && !v.contains(|c: char| c.is_whitespace() || c == ';'))
    });
    let mut checked = 0;
    for chunk in ps.chunks(4_000) {
        let mut args = vec![
            "-cp",
            MAVEN_ARTIFACT,
            "org.apache.maven.artifact.versioning.ComparableVersion",
        ];
        for (a, b) in chunk {
            args.push(a);
            args.push(b);
        }
        let out = run("java", &args, "", hint);
        // "N. <version> -> <canonical>; tokens: [...]" for each argument, and between
        // consecutive arguments "   <a> <op> <b>".
        let mut canonical = Vec::new();
        let mut ops = Vec::new();
        for line in &out {
            if let Some(cmp) = line.strip_prefix("   ") {
                let f: Vec<&str> = cmp.split(' ').collect();
                ops.push(match f[1] {
                    "<" => Ordering::Less,
                    "==" => Ordering::Equal,
                    ">" => Ordering::Greater,
                    other => panic!("unexpected ComparableVersion line {line:?} ({other})"),
                });
            } else if let Some((_, rest)) = line.split_once(". ")
                && let Some((_, canon)) = rest.rsplit_once(" -> ")
            {
                let canon = canon.rsplit_once("; tokens: ").map_or(canon, |(c, _)| c);
                canonical.push(canon.to_owned());
            }
        }
        assert_eq!(
            ops.len(),
            chunk.len() * 2 - 1,
            "ComparableVersion's output:\n{}",
            out.join("\n")
        );
        assert_eq!(canonical.len(), chunk.len() * 2);
        let reference: Vec<Answer> = ops.iter().step_by(2).map(|o| Answer::Order(*o)).collect();
        checked += agree(
            "Maven vs ComparableVersion",
            Ecosystem::Maven,
            chunk,
            &reference,
        );
        let mut wrong = Vec::new();
        for ((a, b), k) in chunk.iter().zip((0..).step_by(2)) {
            for (v, want) in [(a, &canonical[k]), (b, &canonical[k + 1])] {
                let got = MavenVersion::parse(v).canonical();
                if &got != want {
                    wrong.push(format!("{v:?}: berth {got:?}, Maven {want:?}"));
                }
            }
        }
        assert!(
            wrong.is_empty(),
            "canonical forms differ:\n{}",
            wrong.join("\n")
        );
    }
    assert!(checked > 10_000, "{checked} Maven pairs");
}

/// Maven's order has cycles; berth keeps Maven's answers (so a range check answers as
/// Maven would) rather than inventing a total order Maven does not have.
#[test]
fn maven_order_is_not_transitive_as_comparable_version_is_not() {
    let cycle = ["1-alpha-1", "1", "1.sp-1", "1-alpha-1"];
    let mut args = vec![
        "-cp",
        MAVEN_ARTIFACT,
        "org.apache.maven.artifact.versioning.ComparableVersion",
    ];
    args.extend(cycle);
    let out = run(
        "java",
        &args,
        "",
        "install libmaven3-core-java and default-jre-headless",
    );
    let maven: Vec<&str> = out.iter().filter_map(|l| l.strip_prefix("   ")).collect();
    assert_eq!(maven, ["1-alpha-1 < 1", "1 < 1.sp-1", "1.sp-1 < 1-alpha-1"]);
    for w in cycle.windows(2) {
        assert_eq!(
            compare(Ecosystem::Maven, w[0], w[1]),
            Ok(Ordering::Less),
            "{w:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// apk

// berth's own vectors, derived from the rules of apk-tools' `src/version.c` as read at
// alpinelinux/apk-tools 90b974fd8510fbc2b3d6adde311ad1ba8754c728 (not apk-tools' test data):
// `a OP b` comparisons and validity lines, `version` valid, `!version` invalid, in groups
// each headed by a `#` line naming the rule it exercises.
include!("version_apk_data.rs");

#[test]
fn apk_order_follows_apk_tools_rules_on_berth_vectors() {
    let mut compared = 0;
    let mut validity = 0;
    let mut wrong = Vec::new();
    for line in APK_VERSION_DATA
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
    {
        let f: Vec<&str> = line.split_whitespace().collect();
        match f.as_slice() {
            [a, op, b] => {
                let want = match *op {
                    "<" => Ordering::Less,
                    "=" => Ordering::Equal,
                    ">" => Ordering::Greater,
                    _ => panic!("unexpected operator in {line:?}"),
                };
                // Both ways round: the vector and its mirror image.
                let got = compare(Ecosystem::Alpine, a, b);
                let mirror = compare(Ecosystem::Alpine, b, a);
                if got != Ok(want) || mirror != Ok(want.reverse()) {
                    wrong.push(format!("{line}: ours {got:?}, mirrored {mirror:?}"));
                }
                compared += 1;
            }
            [v] => {
                // `!` alone is the empty version, invalid.
                let (invalid, v) = match v.strip_prefix('!') {
                    Some(v) => (true, v),
                    None => (false, *v),
                };
                let parsed = Version::parse(Ecosystem::Alpine, v);
                if parsed.is_err() != invalid {
                    wrong.push(format!("{line}: ours {parsed:?}"));
                }
                validity += 1;
            }
            _ => panic!("unexpected line {line:?}"),
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} vectors disagree:\n{}",
        wrong.len(),
        compared + validity,
        wrong.join("\n")
    );
    assert!(
        compared >= 250 && validity >= 30,
        "{compared} comparisons, {validity} validity lines"
    );
    eprintln!(
        "apk: {compared} comparisons and {validity} validity lines agree with apk-tools' rules"
    );
}

fn apk_version(r: &mut Rng) -> String {
    let mut s = r.digits();
    for _ in 0..r.below(4) {
        s.push('.');
        s.push_str(&r.digits());
    }
    if r.chance(20) {
        s.push(r.char_from("abz"));
    }
    for _ in 0..r.below(3) {
        s.push('_');
        s.push_str(r.pick(&["alpha", "beta", "pre", "rc", "cvs", "svn", "git", "hg", "p"]));
        if r.chance(60) {
            s.push_str(&r.digits());
        }
    }
    if r.chance(15) {
        s.push('~');
        s.push_str(r.pick(&["0", "abc", "1234abcd", "f"]));
    }
    if r.chance(60) {
        s.push_str("-r");
        s.push_str(&r.digits());
    }
    s
}

/// Without apk-tools to ask, generated versions are held to what any order must be:
/// antisymmetric, and transitive (a sorted list stays sorted pairwise), on valid versions
/// from the grammar and their near-misses.
#[test]
fn apk_order_is_a_total_order_on_generated_versions() {
    let mut rng = Rng(0x61706b);
    let mut versions: Vec<Version> = (0..3_000)
        .flat_map(|_| {
            let v = apk_version(&mut rng);
            let m = rng.mutate(&v, "0123456789._-rab~", &["_rc1", "-r1", ".0", "a", "_p1"]);
            [v, m]
        })
        .filter_map(|v| Version::parse(Ecosystem::Alpine, &v).ok())
        .collect();
    assert!(versions.len() > 4_000, "{} valid versions", versions.len());
    for w in versions.windows(2) {
        assert_eq!(
            w[0].cmp(&w[1]),
            w[1].cmp(&w[0]).reverse(),
            "{} {}",
            w[0],
            w[1]
        );
    }
    versions.sort();
    for i in 0..versions.len() {
        for j in (i + 1..versions.len()).step_by(97) {
            assert_ne!(
                versions[i].cmp(&versions[j]),
                Ordering::Greater,
                "not transitive: {} sorts before {}",
                versions[i],
                versions[j]
            );
        }
    }
}
