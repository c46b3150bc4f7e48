//! Device access rules shared by the v1 devices controller and the v2 eBPF filter.
//!
//! Rules are applied in order with the kernel's cgroup v1 semantics, emulated here (as runc's
//! `devices.emulator`): an `a` rule switches to allow-all or deny-all and clears the
//! exceptions; other rules add or remove exceptions, merging access modes per device. Both
//! versions start from deny-all and append runc's default allowed devices (runc specconv
//! `AllowedDevices`) after the config's rules, so a container never gets a device the config
//! and those defaults do not grant. From the emulated state, v1 writes the smallest transition
//! from the current `devices.list` (nothing when already right; deny-all then the allows for a
//! new cgroup, in the config's order then the defaults', as crun writes them, so that
//! `devices.list` reads as the config says) and v2 compiles the exceptions into one eBPF
//! program.

use std::fmt;

use berth_runtime_spec::{LinuxDeviceCgroup, LinuxDeviceType, LinuxResources};

use super::error::CgroupError;

/// `*` in a rule: any major or minor.
pub(crate) const WILDCARD: i64 = -1;

/// The device type of a rule. The order (a < b < c) is runc's sort order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum DevType {
    All,
    Block,
    Char,
}

impl DevType {
    fn as_char(self) -> char {
        match self {
            Self::All => 'a',
            Self::Block => 'b',
            Self::Char => 'c',
        }
    }
}

/// Access modes: read, write, mknod.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Hash)]
pub(crate) struct Access(u8);

impl Access {
    pub(crate) const READ: Self = Self(1);
    pub(crate) const WRITE: Self = Self(2);
    pub(crate) const MKNOD: Self = Self(4);
    pub(crate) const ALL: Self = Self(7);

    pub(crate) fn parse(text: &str) -> Option<Self> {
        let mut access = Self::default();
        for c in text.chars() {
            access.0 |= match c {
                'r' => Self::READ.0,
                'w' => Self::WRITE.0,
                'm' => Self::MKNOD.0,
                _ => return None,
            };
        }
        Some(access)
    }

    pub(crate) fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    pub(crate) fn is_empty(self) -> bool {
        self.0 == 0
    }

    fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    fn difference(self, other: Self) -> Self {
        Self(self.0 & !other.0)
    }

    fn intersects(self, other: Self) -> bool {
        self.0 & other.0 != 0
    }
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (bit, c) in [(Self::READ, 'r'), (Self::WRITE, 'w'), (Self::MKNOD, 'm')] {
            if self.contains(bit) {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

/// One device rule: `allow`/deny `access` on `typ major:minor` (-1 for `*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Rule {
    pub typ: DevType,
    pub major: i64,
    pub minor: i64,
    pub access: Access,
    pub allow: bool,
}

fn number(n: i64) -> String {
    if n == WILDCARD {
        "*".to_owned()
    } else {
        n.to_string()
    }
}

impl Rule {
    /// The line written to `devices.allow`/`devices.deny` ("c 1:3 rwm").
    pub(crate) fn cgroup_string(&self) -> String {
        format!(
            "{} {}:{} {}",
            self.typ.as_char(),
            number(self.major),
            number(self.minor),
            self.access
        )
    }

    fn meta(&self) -> Meta {
        Meta {
            major: self.major,
            minor: self.minor,
            typ: self.typ,
        }
    }
}

/// A config rule (`linux.resources.devices[i]`) as a [`Rule`]; as runc: no type means `a`, no
/// major/minor means `*`, an empty access is an error.
pub(crate) fn rule_from_oci(index: usize, rule: &LinuxDeviceCgroup) -> Result<Rule, CgroupError> {
    let invalid = |reason: String| CgroupError::DeviceRule {
        rule: rule.to_string(),
        reason,
    };
    let typ = match rule.typ.unwrap_or(LinuxDeviceType::A) {
        LinuxDeviceType::A => DevType::All,
        LinuxDeviceType::B => DevType::Block,
        LinuxDeviceType::C => DevType::Char,
        other => {
            return Err(invalid(format!(
                "invalid cgroup device type {:?}",
                other.as_str()
            )));
        }
    };
    let access_text = rule.access.as_deref().unwrap_or("");
    if access_text.is_empty() {
        return Err(invalid(format!(
            "device access at {index} field cannot be empty"
        )));
    }
    let access = Access::parse(access_text)
        .ok_or_else(|| invalid(format!("unknown device access {access_text:?}")))?;
    let check = |n: Option<i64>, what: &str| -> Result<i64, CgroupError> {
        match n {
            None => Ok(WILDCARD),
            Some(n) if n == WILDCARD || (0..=i64::from(u32::MAX)).contains(&n) => Ok(n),
            Some(n) => Err(invalid(format!("invalid {what} {n}"))),
        }
    };
    Ok(Rule {
        typ,
        major: check(rule.major, "major")?,
        minor: check(rule.minor, "minor")?,
        access,
        allow: rule.allow,
    })
}

fn oci_rule(
    typ: LinuxDeviceType,
    major: Option<i64>,
    minor: Option<i64>,
    access: &str,
) -> LinuxDeviceCgroup {
    LinuxDeviceCgroup {
        allow: true,
        typ: Some(typ),
        major,
        minor,
        access: Some(access.to_owned()),
    }
}

/// The device rules runc appends after every config's own (specconv `AllowedDevices`): mknod of
/// any device, and rwm on /dev/null, random, full, tty, zero, urandom, /dev/pts/*, /dev/ptmx and
/// /dev/net/tun.
pub(crate) fn default_device_rules() -> Vec<LinuxDeviceCgroup> {
    use LinuxDeviceType::{B, C};
    vec![
        oci_rule(C, None, None, "m"),
        oci_rule(B, None, None, "m"),
        oci_rule(C, Some(1), Some(3), "rwm"),
        oci_rule(C, Some(1), Some(8), "rwm"),
        oci_rule(C, Some(1), Some(7), "rwm"),
        oci_rule(C, Some(5), Some(0), "rwm"),
        oci_rule(C, Some(1), Some(5), "rwm"),
        oci_rule(C, Some(1), Some(9), "rwm"),
        oci_rule(C, Some(136), None, "rwm"),
        oci_rule(C, Some(5), Some(2), "rwm"),
        oci_rule(C, Some(10), Some(200), "rwm"),
    ]
}

/// The rules a container gets: the config's, then [`default_device_rules`].
pub(crate) fn effective_rules(resources: &LinuxResources) -> Result<Vec<Rule>, CgroupError> {
    let configured = resources.devices.as_deref().unwrap_or_default();
    configured
        .iter()
        .chain(default_device_rules().iter())
        .enumerate()
        .map(|(i, rule)| rule_from_oci(i, rule))
        .collect()
}

/// Which devices an exception is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Meta {
    major: i64,
    minor: i64,
    typ: DevType,
}

/// The state of a v1 devices cgroup: a default and exceptions to it. The exceptions keep
/// the order they were added in, as the kernel's list does (`devices.list` shows them in
/// the order written): a config's rules are written, and listed, in its own order.
#[derive(Clone, Debug, Default)]
pub(crate) struct Emulator {
    /// Allow-all ("black-list") when true, deny-all ("white-list") otherwise.
    pub default_allow: bool,
    exceptions: Vec<(Meta, Access)>,
}

/// The same state, whatever the order of the exceptions.
impl PartialEq for Emulator {
    fn eq(&self, other: &Self) -> bool {
        self.default_allow == other.default_allow
            && self.exceptions.len() == other.exceptions.len()
            && self
                .exceptions
                .iter()
                .all(|(meta, access)| other.get(meta) == Some(*access))
    }
}

impl Eq for Emulator {}

impl Emulator {
    /// Deny-all followed by `rules`.
    pub(crate) fn build(rules: &[Rule]) -> Result<Self, CgroupError> {
        let mut emulator = Self::default();
        for rule in rules {
            emulator.apply(rule)?;
        }
        Ok(emulator)
    }

    /// The state a `devices.list` describes (an "a *:* rwm" line means allow-all, whose deny
    /// exceptions the kernel does not list).
    pub(crate) fn from_list(text: &str) -> Result<Self, String> {
        let mut emulator = Self::default();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let fields: Vec<&str> = line.split([' ', ':']).collect();
            let [typ, major, minor, access] = fields[..] else {
                return Err(format!("malformed devices.list rule {line:?}"));
            };
            let typ = match typ {
                "a" => DevType::All,
                "b" => DevType::Block,
                "c" => DevType::Char,
                _ => return Err(format!("unknown device type in {line:?}")),
            };
            let parse = |n: &str| -> Result<i64, String> {
                if n == "*" {
                    return Ok(WILDCARD);
                }
                n.parse::<u32>()
                    .map(i64::from)
                    .map_err(|_| format!("invalid number in {line:?}"))
            };
            let access = Access::parse(access).filter(|a| !a.is_empty());
            let access = access.ok_or_else(|| format!("invalid access in {line:?}"))?;
            let rule = Rule {
                typ,
                major: parse(major)?,
                minor: parse(minor)?,
                access,
                allow: true,
            };
            emulator.apply(&rule).map_err(|err| err.to_string())?;
        }
        Ok(emulator)
    }

    fn get(&self, meta: &Meta) -> Option<Access> {
        self.exceptions
            .iter()
            .find(|(m, _)| m == meta)
            .map(|(_, a)| *a)
    }

    pub(crate) fn apply(&mut self, rule: &Rule) -> Result<(), CgroupError> {
        if rule.typ == DevType::All {
            *self = Self {
                default_allow: rule.allow,
                exceptions: Vec::new(),
            };
            return Ok(());
        }
        // An exception is added when the rule goes against the default, removed otherwise;
        // one for a device already listed widens it in place (as the kernel's list).
        if rule.allow == self.default_allow {
            self.remove(rule)
        } else {
            let meta = rule.meta();
            match self.exceptions.iter_mut().find(|(m, _)| *m == meta) {
                Some((_, access)) => *access = access.union(rule.access),
                None => self.exceptions.push((meta, rule.access)),
            }
            Ok(())
        }
    }

    /// What the kernel does with a write to `devices.allow`/`devices.deny`: as [`Self::apply`],
    /// but removing an exception never checks wildcards (for the fake cgroupfs).
    #[cfg(test)]
    pub(crate) fn apply_as_kernel(&mut self, rule: &Rule) {
        if rule.typ == DevType::All || rule.allow != self.default_allow {
            let _ = self.apply(rule);
        } else {
            self.remove_exact(rule);
        }
    }

    fn remove_exact(&mut self, rule: &Rule) {
        let meta = rule.meta();
        if let Some(i) = self.exceptions.iter().position(|(m, _)| *m == meta) {
            let access = self.exceptions[i].1.difference(rule.access);
            if access.is_empty() {
                self.exceptions.remove(i);
            } else {
                self.exceptions[i].1 = access;
            }
        }
    }

    fn remove(&mut self, rule: &Rule) -> Result<(), CgroupError> {
        // cgroup v1 silently ignores removing part of a wildcard exception; refuse instead of
        // leaving the user believing the device is covered (as runc).
        let meta = rule.meta();
        for partial in [
            Meta {
                major: WILDCARD,
                ..meta
            },
            Meta {
                minor: WILDCARD,
                ..meta
            },
            Meta {
                major: WILDCARD,
                minor: WILDCARD,
                ..meta
            },
        ] {
            if partial == meta {
                continue;
            }
            if let Some(access) = self.get(&partial)
                && access.intersects(rule.access)
            {
                return Err(CgroupError::DeviceRule {
                    rule: rule.cgroup_string(),
                    reason: format!(
                        "not supported by devices cgroup v1 (cannot punch a hole in the wildcard rule {})",
                        Rule {
                            typ: partial.typ,
                            major: partial.major,
                            minor: partial.minor,
                            access,
                            allow: !rule.allow
                        }
                        .cgroup_string()
                    ),
                });
            }
        }
        self.remove_exact(rule);
        Ok(())
    }

    /// The exceptions, each with the action opposite to the default, in the order added.
    pub(crate) fn exceptions(&self) -> Vec<Rule> {
        self.exceptions
            .iter()
            .map(|(meta, access)| Rule {
                typ: meta.typ,
                major: meta.major,
                minor: meta.minor,
                access: *access,
                allow: !self.default_allow,
            })
            .collect()
    }

    /// The fewest rules that turn a cgroup in state `self` into `target` (runc `Transition`):
    /// a disruptive `a` rule only when the default changes or the source is allow-all (whose
    /// deny list cannot be read back), then the dropped and the gained exceptions, each in
    /// its list's order (so a new cgroup gets the target's rules in the target's order).
    pub(crate) fn transition(&self, target: &Self) -> Vec<Rule> {
        let mut rules = Vec::new();
        let mut old = self;
        let empty = Self::default();
        if self.default_allow || self.default_allow != target.default_allow {
            rules.push(Rule {
                typ: DevType::All,
                major: WILDCARD,
                minor: WILDCARD,
                access: Access::ALL,
                allow: target.default_allow,
            });
            old = &empty;
        }
        for (meta, old_access) in &old.exceptions {
            let dropped = old_access.difference(target.get(meta).unwrap_or_default());
            if !dropped.is_empty() {
                rules.push(Rule {
                    typ: meta.typ,
                    major: meta.major,
                    minor: meta.minor,
                    access: dropped,
                    allow: target.default_allow,
                });
            }
        }
        for (meta, new_access) in &target.exceptions {
            let gained = new_access.difference(old.get(meta).unwrap_or_default());
            if !gained.is_empty() {
                rules.push(Rule {
                    typ: meta.typ,
                    major: meta.major,
                    minor: meta.minor,
                    access: gained,
                    allow: !target.default_allow,
                });
            }
        }
        rules
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(text: &str, allow: bool) -> Rule {
        let em = Emulator::from_list(text).unwrap();
        let mut r = em.exceptions()[0];
        r.allow = allow;
        r
    }

    #[test]
    fn defaults_are_runcs_allowed_devices() {
        let strings: Vec<String> = default_device_rules()
            .iter()
            .enumerate()
            .map(|(i, r)| rule_from_oci(i, r).unwrap().cgroup_string())
            .collect();
        assert_eq!(
            strings,
            [
                "c *:* m",
                "b *:* m",
                "c 1:3 rwm",
                "c 1:8 rwm",
                "c 1:7 rwm",
                "c 5:0 rwm",
                "c 1:5 rwm",
                "c 1:9 rwm",
                "c 136:* rwm",
                "c 5:2 rwm",
                "c 10:200 rwm"
            ]
        );
    }

    #[test]
    fn oci_rules_follow_runc_conversion() {
        let mut r = LinuxDeviceCgroup {
            access: Some("rwm".into()),
            ..Default::default()
        };
        let converted = rule_from_oci(0, &r).unwrap();
        assert_eq!(converted.cgroup_string(), "a *:* rwm");
        assert!(!converted.allow);
        r.access = None;
        let err = rule_from_oci(3, &r).unwrap_err();
        assert!(
            err.to_string()
                .contains("device access at 3 field cannot be empty"),
            "{err}"
        );
        r.access = Some("rx".into());
        assert!(rule_from_oci(0, &r).is_err());
        r.access = Some("r".into());
        r.typ = Some(LinuxDeviceType::U);
        assert!(
            rule_from_oci(0, &r)
                .unwrap_err()
                .to_string()
                .contains("invalid cgroup device type")
        );
        r.typ = Some(LinuxDeviceType::C);
        r.major = Some(-2);
        assert!(
            rule_from_oci(0, &r)
                .unwrap_err()
                .to_string()
                .contains("invalid major -2")
        );
    }

    #[test]
    fn a_new_cgroup_gets_deny_all_then_the_allows_in_order() {
        let current = Emulator::from_list("a *:* rwm\n").unwrap();
        let target = Emulator::build(&[
            rule("c 1:3 rwm", true),
            rule("c 136:* rw", true),
            rule("b 8:0 r", true),
        ])
        .unwrap();
        let writes: Vec<(bool, String)> = current
            .transition(&target)
            .iter()
            .map(|r| (r.allow, r.cgroup_string()))
            .collect();
        assert_eq!(
            writes,
            [
                (false, "a *:* rwm".to_owned()),
                (true, "c 1:3 rwm".to_owned()),
                (true, "c 136:* rw".to_owned()),
                (true, "b 8:0 r".to_owned()),
            ]
        );
        // a rule for a device already listed widens it where it is, as the kernel's list
        let widened = Emulator::build(&[
            rule("c 10:229 r", true),
            rule("b 8:0 r", true),
            rule("c 10:229 w", true),
        ])
        .unwrap();
        let order: Vec<String> = widened
            .exceptions()
            .iter()
            .map(Rule::cgroup_string)
            .collect();
        assert_eq!(order, ["c 10:229 rw", "b 8:0 r"]);
        // the same rules in another order are the same state (nothing to write)
        let reordered =
            Emulator::build(&[rule("b 8:0 r", true), rule("c 10:229 rw", true)]).unwrap();
        assert_eq!(widened, reordered);
        assert!(widened.transition(&reordered).is_empty());
    }

    #[test]
    fn an_unchanged_cgroup_needs_no_write_and_a_change_only_the_difference() {
        let target = Emulator::build(&[rule("c 1:3 rwm", true), rule("c 1:5 rw", true)]).unwrap();
        let current = Emulator::from_list("c 1:3 rwm\nc 1:5 rw\n").unwrap();
        assert_eq!(current, target);
        assert!(current.transition(&target).is_empty());
        let current = Emulator::from_list("c 1:3 rwm\nc 1:7 rwm\n").unwrap();
        let writes: Vec<(bool, String)> = current
            .transition(&target)
            .iter()
            .map(|r| (r.allow, r.cgroup_string()))
            .collect();
        assert_eq!(
            writes,
            [
                (false, "c 1:7 rwm".to_owned()),
                (true, "c 1:5 rw".to_owned())
            ]
        );
    }

    #[test]
    fn deny_after_allow_removes_access_and_holes_in_wildcards_are_refused() {
        let em = Emulator::build(&[rule("c 1:3 rwm", true), rule("c 1:3 w", false)]).unwrap();
        assert_eq!(em.exceptions()[0].cgroup_string(), "c 1:3 rm");
        let err = Emulator::build(&[rule("c 1:* rwm", true), rule("c 1:3 w", false)]).unwrap_err();
        assert!(err.to_string().contains("cannot punch a hole"), "{err}");
        // allow-all then a deny: a deny exception
        let allow_all = Rule {
            typ: DevType::All,
            major: WILDCARD,
            minor: WILDCARD,
            access: Access::ALL,
            allow: true,
        };
        let em = Emulator::build(&[allow_all, rule("b 8:0 w", false)]).unwrap();
        assert!(em.default_allow);
        assert_eq!(em.exceptions()[0].cgroup_string(), "b 8:0 w");
        assert!(!em.exceptions()[0].allow);
    }
}
