//! `linux.seccomp` → per-architecture rule tables, with runc's and libseccomp's semantics.
//!
//! What this module decides (and where it follows whom):
//! - Actions: `SCMP_ACT_KILL` is kill-thread; `errnoRet` defaults to `EPERM` for ERRNO and
//!   TRACE (runc); an `errnoRet` on any other action is an error (runtime-spec: "the runtime
//!   MUST print an error and fail"). A rule's own `errnoRet` applies to it, `defaultErrnoRet`
//!   only to the default action.
//! - A rule whose action equals the default action is dropped (runc), but its names still count
//!   for the ENOSYS limit below.
//! - Names: a name unknown to one architecture is skipped there; a name unknown to every
//!   architecture is skipped and reported ([`super::Filter::unknown_syscalls`]) — runc logs
//!   it at debug level and goes on.
//! - Several `args` of one rule are ANDed; if one argument index appears twice, each condition
//!   becomes a rule of its own, ORed (runc's "old behaviour").
//! - For one syscall, the first unconditional rule wins over everything (libseccomp);
//!   otherwise conditional rules are tried in profile order and the first match wins.
//! - On 32-bit ABIs (x86, ARM, MIPS o32/n32, PPC, x32) arguments compare on their low 32
//!   bits, the value truncated, as libseccomp does. `SCMP_CMP_MASKED_EQ` is
//!   `(arg & value) == (valueTwo & value)` (libseccomp masks the datum).
//! - Multiplexed socket and SysV IPC calls (`socketcall(2)`, `ipc(2)` on x86, PPC, s390x, MIPS
//!   o32): a rule on `socket` also covers `socketcall(SYS_SOCKET, …)`, as libseccomp does. The
//!   real arguments of a multiplexed call are in memory that BPF cannot read, so for a rule with
//!   argument conditions the multiplexed path gets the rule's action only if it is stricter than
//!   the default action (then every call through the multiplexer gets it), and otherwise the
//!   default. libseccomp instead checks the conditions against the multiplexer's own arguments,
//!   which mean something else.
//! - Architectures: the native one always, plus those listed. A syscall of any other
//!   architecture, or of x32 when only x86_64 is listed (and the reverse), gets libseccomp's
//!   bad-architecture action, KILL_THREAD (runc does not change it).
//! - runc's -ENOSYS stub: unless the default action is ALLOW, LOG or TRACE (or ERRNO(ENOSYS)),
//!   a syscall numbered above the highest number the profile names for its architecture gets
//!   ENOSYS rather than the default, so that libc falls back from syscalls newer than the
//!   profile (clone3, faccessat2, …); on s390x syscall 0 gets ENOSYS too.

use std::collections::BTreeMap;

use berth_runtime_spec::{LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompOperator};

use super::SeccompError;
use super::arch::{self, Abi, ArchDef, Names};

pub(crate) const RET_KILL_PROCESS: u32 = 0x8000_0000;
pub(crate) const RET_KILL_THREAD: u32 = 0;
pub(crate) const RET_TRAP: u32 = 0x0003_0000;
pub(crate) const RET_ERRNO: u32 = 0x0005_0000;
pub(crate) const RET_USER_NOTIF: u32 = 0x7fc0_0000;
pub(crate) const RET_TRACE: u32 = 0x7ff0_0000;
pub(crate) const RET_LOG: u32 = 0x7ffc_0000;
pub(crate) const RET_ALLOW: u32 = 0x7fff_0000;
const RET_ACTION_FULL: u32 = 0xffff_0000;

pub(crate) const FLAG_TSYNC: u32 = 1;
pub(crate) const FLAG_LOG: u32 = 2;
pub(crate) const FLAG_SPEC_ALLOW: u32 = 4;
pub(crate) const FLAG_NEW_LISTENER: u32 = 8;
pub(crate) const FLAG_TSYNC_ESRCH: u32 = 16;
pub(crate) const FLAG_WAIT_KILLABLE_RECV: u32 = 32;

const EPERM: u32 = 1;
const ENOSYS: u32 = 38;

/// The filter flags of the runtime-spec, by name, with their `SECCOMP_FILTER_FLAG_*` bits.
pub(crate) const FLAGS: [(&str, u32); 4] = [
    ("SECCOMP_FILTER_FLAG_TSYNC", FLAG_TSYNC),
    ("SECCOMP_FILTER_FLAG_LOG", FLAG_LOG),
    ("SECCOMP_FILTER_FLAG_SPEC_ALLOW", FLAG_SPEC_ALLOW),
    (
        "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
        FLAG_WAIT_KILLABLE_RECV,
    ),
];

/// A comparison, as the code generator needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Ge,
    Gt,
    /// `(arg & mask) == value`, `value` already masked.
    MaskedEq(u64),
}

/// One argument condition: `args[arg] <op> value`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cond {
    pub arg: u8,
    pub op: Op,
    pub value: u64,
}

/// Conditions (ANDed) and the action when they all hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Rule {
    pub conds: Vec<Cond>,
    pub action: u32,
}

/// What one syscall number gets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Always(u32),
    /// First matching rule wins; none matching → the default action.
    Rules(Vec<Rule>),
}

#[derive(Debug, Default)]
struct Entry {
    always: Option<u32>,
    rules: Vec<Rule>,
}

impl Entry {
    fn add(&mut self, rule: Rule) {
        if self.always.is_some() {
            return;
        }
        if rule.conds.is_empty() {
            self.always = Some(rule.action);
            self.rules.clear();
        } else if !self.rules.contains(&rule) {
            self.rules.push(rule);
        }
    }

    fn outcome(self) -> Outcome {
        match self.always {
            Some(action) => Outcome::Always(action),
            None => Outcome::Rules(self.rules),
        }
    }
}

/// The rules of one ABI.
#[derive(Debug)]
pub(crate) struct AbiRules {
    pub def: &'static ArchDef,
    pub syscalls: BTreeMap<u32, Outcome>,
    /// Highest syscall number the profile names on this ABI (for the ENOSYS stub).
    pub max_nr: Option<u32>,
}

/// One `seccomp_data.arch` value: one ABI, or x86_64 and x32 together.
#[derive(Debug)]
pub(crate) struct ArchBlock {
    pub audit: u32,
    pub abis: Vec<AbiRules>,
}

/// The whole filter before code generation.
#[derive(Debug)]
pub(crate) struct Plan {
    pub default: u32,
    pub bad_arch: u32,
    /// Apply runc's ENOSYS stub.
    pub enosys: bool,
    /// Native block first.
    pub blocks: Vec<ArchBlock>,
    pub flags: u32,
    /// Flags added by default (runc's implied SPEC_ALLOW), dropped if the kernel refuses them.
    pub optional_flags: u32,
    pub uses_notify: bool,
    pub unknown: Vec<String>,
}

fn action_name(action: LinuxSeccompAction) -> String {
    action.to_string()
}

/// The `SECCOMP_RET_*` value of an action.
pub(crate) fn action_value(
    action: LinuxSeccompAction,
    errno: Option<u32>,
) -> Result<u32, SeccompError> {
    use LinuxSeccompAction as A;
    let with_data = |base: u32| -> Result<u32, SeccompError> {
        let data = errno.unwrap_or(EPERM);
        if data > 0xffff {
            return Err(SeccompError::ErrnoOutOfRange {
                action: action_name(action),
                errno: data,
            });
        }
        Ok(base | data)
    };
    let plain = |value: u32| -> Result<u32, SeccompError> {
        match errno {
            Some(errno) => Err(SeccompError::ErrnoNotSupported {
                action: action_name(action),
                errno,
            }),
            None => Ok(value),
        }
    };
    match action {
        A::ScmpActKill | A::ScmpActKillThread => plain(RET_KILL_THREAD),
        A::ScmpActKillProcess => plain(RET_KILL_PROCESS),
        A::ScmpActTrap => plain(RET_TRAP),
        A::ScmpActErrno => with_data(RET_ERRNO),
        A::ScmpActTrace => with_data(RET_TRACE),
        A::ScmpActNotify => plain(RET_USER_NOTIF),
        A::ScmpActLog => plain(RET_LOG),
        A::ScmpActAllow => plain(RET_ALLOW),
    }
}

/// Kernel precedence of an action (lower is stricter), as the kernel orders the verdicts of
/// stacked filters.
pub(crate) fn strictness(action: u32) -> u8 {
    match action & RET_ACTION_FULL {
        RET_KILL_PROCESS => 0,
        RET_KILL_THREAD => 1,
        RET_TRAP => 2,
        RET_ERRNO => 3,
        RET_USER_NOTIF => 4,
        RET_TRACE => 5,
        RET_LOG => 6,
        _ => 7,
    }
}

fn cond(syscall: &str, arg: &LinuxSeccompArg) -> Result<Cond, SeccompError> {
    let index = arg.index;
    let Some(index) = u8::try_from(index).ok().filter(|i| *i < 6) else {
        return Err(SeccompError::ArgIndex {
            syscall: syscall.to_owned(),
            index,
        });
    };
    use LinuxSeccompOperator as O;
    let (op, value) = match arg.op {
        O::ScmpCmpNe => (Op::Ne, arg.value),
        O::ScmpCmpLt => (Op::Lt, arg.value),
        O::ScmpCmpLe => (Op::Le, arg.value),
        O::ScmpCmpEq => (Op::Eq, arg.value),
        O::ScmpCmpGe => (Op::Ge, arg.value),
        O::ScmpCmpGt => (Op::Gt, arg.value),
        O::ScmpCmpMaskedEq => {
            let mask = arg.value;
            (Op::MaskedEq(mask), arg.value_two.unwrap_or(0) & mask)
        }
    };
    Ok(Cond {
        arg: index,
        op,
        value,
    })
}

/// The condition as one ABI sees it, or `None` when it always holds there.
fn cond_for(def: &ArchDef, c: Cond) -> Option<Cond> {
    if def.word32 {
        let value = c.value & 0xffff_ffff;
        let op = match c.op {
            Op::MaskedEq(mask) if mask & 0xffff_ffff == 0 => return None,
            Op::MaskedEq(mask) => Op::MaskedEq(mask & 0xffff_ffff),
            op => op,
        };
        Some(Cond {
            arg: c.arg,
            op,
            value,
        })
    } else {
        match c.op {
            Op::MaskedEq(0) => None,
            _ => Some(c),
        }
    }
}

/// One rule of the profile with one name, before it is placed on an ABI.
struct NamedRule<'a> {
    name: &'a str,
    conds: Vec<Cond>,
    action: u32,
}

pub(crate) fn plan(config: &LinuxSeccomp) -> Result<Plan, SeccompError> {
    use LinuxSeccompAction as A;
    let default_action = config.default_action;
    if default_action == A::ScmpActNotify {
        return Err(SeccompError::NotifyDefaultAction);
    }
    let default = action_value(default_action, config.default_errno_ret)?;

    // Architectures: native first, then the listed ones, each once.
    let native = arch::native().ok_or(SeccompError::NativeArchUnsupported)?;
    let mut defs: Vec<&'static ArchDef> = vec![native];
    for a in config.architectures.iter().flatten() {
        let name = a.to_string();
        let def = arch::lookup(&name).ok_or(SeccompError::UnsupportedArch { arch: name })?;
        if !defs.contains(&def) {
            defs.push(def);
        }
    }

    // Flags.
    let mut flags = 0;
    let mut optional_flags = 0;
    match &config.flags {
        None => optional_flags |= FLAG_SPEC_ALLOW,
        Some(list) => {
            for f in list {
                let name = f.to_string();
                let bit = FLAGS
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, b)| *b)
                    .ok_or(SeccompError::UnknownFlag { flag: name })?;
                flags |= bit;
            }
        }
    }

    // Rules, one per name (and per condition when an index repeats).
    let mut rules = Vec::new();
    let mut all_names = Vec::new();
    let mut uses_notify = false;
    for syscall in config.syscalls.iter().flatten() {
        let action = action_value(syscall.action, syscall.errno_ret)?;
        for name in &syscall.names {
            if name.is_empty() {
                return Err(SeccompError::EmptySyscallName);
            }
            all_names.push(name.as_str());
            let conds = syscall
                .args
                .iter()
                .flatten()
                .map(|a| cond(name, a))
                .collect::<Result<Vec<_>, _>>()?;
            if action == RET_USER_NOTIF {
                // runc: the runtime writes the listener fd to its parent after loading.
                if name == "write" {
                    return Err(SeccompError::NotifyOnWrite);
                }
                uses_notify = true;
            }
            if action == default {
                continue;
            }
            let repeated = conds
                .iter()
                .enumerate()
                .any(|(i, c)| conds[..i].iter().any(|d| d.arg == c.arg));
            if repeated {
                for c in conds {
                    rules.push(NamedRule {
                        name,
                        conds: vec![c],
                        action,
                    });
                }
            } else {
                rules.push(NamedRule {
                    name,
                    conds,
                    action,
                });
            }
        }
    }
    if uses_notify {
        if config.listener_path.is_none() {
            return Err(SeccompError::NotifyWithoutListenerPath);
        }
        flags |= FLAG_NEW_LISTENER;
        if flags & FLAG_TSYNC != 0 {
            flags |= FLAG_TSYNC_ESRCH;
        }
    } else {
        // Only meaningful with a listener; the kernel refuses it without one.
        flags &= !FLAG_WAIT_KILLABLE_RECV;
    }
    if config.listener_metadata.is_some() && config.listener_path.is_none() {
        return Err(SeccompError::MetadataWithoutListenerPath);
    }

    let enosys = !matches!(default & RET_ACTION_FULL, RET_ALLOW | RET_LOG | RET_TRACE)
        && default != RET_ERRNO | ENOSYS;

    // Place the rules on each ABI.
    let mut unknown: Vec<String> = Vec::new();
    let mut found = vec![false; all_names.len()];
    let mut abis = Vec::with_capacity(defs.len());
    for def in &defs {
        let names = Names::build(def.table);
        let mut entries: BTreeMap<u32, Entry> = BTreeMap::new();
        let socketcall = names.get("socketcall");
        let ipc = names.get("ipc");
        for rule in &rules {
            let conds: Vec<Cond> = rule
                .conds
                .iter()
                .filter_map(|c| cond_for(def, *c))
                .collect();
            if let Some(nr) = names.get(rule.name) {
                entries.entry(nr).or_default().add(Rule {
                    conds: conds.clone(),
                    action: rule.action,
                });
            }
            let mux = match (socketcall, ipc) {
                (None, None) => None,
                _ => match (socketcall, arch::socketcall_number(rule.name)) {
                    (Some(nr), Some(call)) => Some((nr, call, 0xffff_ffff)),
                    _ => match (ipc, arch::ipc_number(rule.name)) {
                        // ipc(2) takes the call in the low 16 bits, a version above.
                        (Some(nr), Some(call)) => Some((nr, call, 0xffff)),
                        _ => None,
                    },
                },
            };
            if let Some((nr, call, mask)) = mux
                && (conds.is_empty() || strictness(rule.action) < strictness(default))
            {
                let c = Cond {
                    arg: 0,
                    op: Op::MaskedEq(mask),
                    value: u64::from(call),
                };
                entries.entry(nr).or_default().add(Rule {
                    conds: vec![c],
                    action: rule.action,
                });
            }
        }
        let mut max_nr = None;
        for (i, name) in all_names.iter().enumerate() {
            if let Some(nr) = names.get(name) {
                found[i] = true;
                max_nr = max_nr.max(Some(nr));
            }
        }
        let syscalls = entries
            .into_iter()
            .map(|(nr, e)| (nr, e.outcome()))
            .collect();
        abis.push(AbiRules {
            def,
            syscalls,
            max_nr,
        });
    }
    for (i, name) in all_names.iter().enumerate() {
        if !found[i] && !arch::known_anywhere(name) && !unknown.iter().any(|u| u == name) {
            unknown.push((*name).to_owned());
        }
    }

    // Group ABIs sharing an audit architecture (x86_64 and x32), native first.
    let mut blocks: Vec<ArchBlock> = Vec::new();
    for abi in abis {
        match blocks.iter_mut().find(|b| b.audit == abi.def.audit) {
            Some(block) => block.abis.push(abi),
            None => blocks.push(ArchBlock {
                audit: abi.def.audit,
                abis: vec![abi],
            }),
        }
    }
    for block in &mut blocks {
        block.abis.sort_by_key(|a| a.def.abi == Abi::X32);
    }

    Ok(Plan {
        default,
        bad_arch: RET_KILL_THREAD,
        enosys,
        blocks,
        flags,
        optional_flags,
        uses_notify,
        unknown,
    })
}
