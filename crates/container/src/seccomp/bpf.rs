//! Classic BPF: code generation from a [`Plan`], a verifier with the kernel's rules, and an
//! interpreter (used by tests, the fuzz target and [`super::Filter::evaluate`]).
//!
//! Layout of a program:
//!
//! ```text
//! ld  [arch]                      dispatch on seccomp_data.arch, native first
//! jeq AUDIT_ARCH_n → block n …
//! ret BAD_ARCH                    (KILL_THREAD, as libseccomp)
//! block:  ld [nr]
//!         ABI check               (x86_64 alone: x32 numbers → BAD_ARCH, -1 → default)
//!         ENOSYS stub             (nr > highest named → ERRNO(ENOSYS))
//!         binary search over intervals of syscall numbers with one outcome each:
//!         `jge` nodes, leaves are `ret` or a jump to the syscall's argument checks
//! args:   per syscall, rule after rule, each a chain of 32-bit word comparisons
//! ```
//!
//! The program is emitted backwards, so every jump target is already placed when its jump is
//! written: a conditional jump farther than 255 instructions goes through a `ja` trampoline
//! (32-bit offset), and a jump to a `ret` that is too far gets its own copy of the `ret`.

use std::collections::{BTreeMap, HashMap};

use super::SeccompError;
use super::arch::{Abi, ArchDef, X32_SYSCALL_BIT};
use super::compile::{ArchBlock, Cond, Op, Outcome, Plan, RET_ERRNO, Rule};

/// One classic BPF instruction (`struct sock_filter`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(C)]
pub(crate) struct Instruction {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

/// `BPF_MAXINSNS`
pub(crate) const MAX_INSNS: usize = 4096;

const BPF_LD: u16 = 0x00;
const BPF_ALU: u16 = 0x04;
const BPF_JMP: u16 = 0x05;
const BPF_RET: u16 = 0x06;
const BPF_W: u16 = 0x00;
const BPF_ABS: u16 = 0x20;
const BPF_K: u16 = 0x00;
const BPF_AND: u16 = 0x50;
const BPF_JA: u16 = 0x00;
const BPF_JEQ: u16 = 0x10;
const BPF_JGT: u16 = 0x20;
const BPF_JGE: u16 = 0x30;
const BPF_JSET: u16 = 0x40;

const LD_ABS: u16 = BPF_LD | BPF_W | BPF_ABS;
const AND_K: u16 = BPF_ALU | BPF_AND | BPF_K;
const JA: u16 = BPF_JMP | BPF_JA;
const JEQ: u16 = BPF_JMP | BPF_JEQ | BPF_K;
const JGT: u16 = BPF_JMP | BPF_JGT | BPF_K;
const JGE: u16 = BPF_JMP | BPF_JGE | BPF_K;
const JSET: u16 = BPF_JMP | BPF_JSET | BPF_K;
const RET_K: u16 = BPF_RET | BPF_K;

const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
/// `sizeof(struct seccomp_data)`
const DATA_LEN: u32 = 64;

const ENOSYS: u32 = 38;

/// Where a jump goes: an emitted instruction (index in the reversed program) or a return.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    Label(usize),
    Ret(u32),
}

/// Backwards emitter.
#[derive(Default)]
struct Emitter {
    rev: Vec<Instruction>,
    rets: HashMap<u32, usize>,
}

impl Emitter {
    fn pos(&self) -> usize {
        self.rev.len()
    }

    fn push(&mut self, code: u16, jt: u8, jf: u8, k: u32) -> usize {
        self.rev.push(Instruction { code, jt, jf, k });
        self.rev.len() - 1
    }

    fn stmt(&mut self, code: u16, k: u32) -> usize {
        self.push(code, 0, 0, k)
    }

    fn ret(&mut self, value: u32) -> usize {
        let at = self.push(RET_K, 0, 0, value);
        self.rets.insert(value, at);
        at
    }

    /// Distance from an instruction about to be emitted to `label`.
    fn distance(&self, label: usize) -> usize {
        self.pos() - label - 1
    }

    /// The label of `target`, emitting a `ret` when none is near enough.
    fn place(&mut self, target: Target) -> usize {
        match target {
            Target::Label(label) => label,
            Target::Ret(value) => match self.rets.get(&value) {
                // Leave room for trampolines the caller may still emit.
                Some(&at) if self.distance(at) <= 250 => at,
                _ => self.ret(value),
            },
        }
    }

    /// A label near here that leads to `label`.
    fn near(&mut self, label: usize) -> usize {
        let insn = self.rev[label];
        if insn.code == RET_K {
            self.ret(insn.k)
        } else {
            let k = self.distance(label);
            self.stmt(JA, u32::try_from(k).unwrap_or(u32::MAX))
        }
    }

    /// Conditional jump `code k` to `jt` if true, `jf` if false.
    fn jump(&mut self, code: u16, k: u32, jt: Target, jf: Target) -> usize {
        let mut f = self.place(jf);
        let mut t = self.place(jt);
        loop {
            if self.distance(t) > 255 {
                t = self.near(t);
            } else if self.distance(f) > 255 {
                f = self.near(f);
            } else {
                break;
            }
        }
        let (dt, df) = (self.distance(t), self.distance(f));
        // Both are at most 255 after the loop.
        self.push(code, dt as u8, df as u8, k)
    }

    /// `target` as an instruction here (a `ret` for returns).
    fn materialize(&mut self, target: Target) -> usize {
        match target {
            Target::Label(label) => label,
            Target::Ret(value) => self.ret(value),
        }
    }

    fn finish(mut self) -> Vec<Instruction> {
        self.rev.reverse();
        self.rev
    }
}

/// Generate the program of a plan.
pub(crate) fn generate(plan: &Plan) -> Result<Vec<Instruction>, SeccompError> {
    let mut e = Emitter::default();
    // Blocks in reverse so that the native one comes right after the dispatch.
    let mut starts = Vec::with_capacity(plan.blocks.len());
    for block in plan.blocks.iter().rev() {
        starts.push(gen_block(&mut e, plan, block));
    }
    starts.reverse();
    let mut next = e.ret(plan.bad_arch);
    for (block, start) in plan.blocks.iter().zip(starts).rev() {
        next = e.jump(JEQ, block.audit, Target::Label(start), Target::Label(next));
    }
    e.stmt(LD_ABS, OFF_ARCH);
    let program = e.finish();
    if program.len() > MAX_INSNS {
        return Err(SeccompError::ProgramTooLarge {
            len: program.len(),
            max: MAX_INSNS,
        });
    }
    verify(&program).map_err(|reason| SeccompError::Internal { reason })?;
    Ok(program)
}

/// The outcome of one syscall number on one ABI.
type Leaf<'a> = (&'a ArchDef, &'a Outcome);

fn gen_block(e: &mut Emitter, plan: &Plan, block: &ArchBlock) -> usize {
    let default = plan.default;
    // All ABIs of the block in one number space (x32 numbers carry their bit).
    let mut merged: BTreeMap<u32, Leaf<'_>> = BTreeMap::new();
    for abi in &block.abis {
        for (nr, outcome) in &abi.syscalls {
            merged.insert(*nr, (abi.def, outcome));
        }
    }

    // Argument checks first: they come last in the program.
    let mut checks: HashMap<u32, Target> = HashMap::new();
    for (nr, (def, outcome)) in merged.iter().rev() {
        if let Outcome::Rules(rules) = outcome {
            checks.insert(*nr, gen_rules(e, def, rules, default));
        }
    }

    // Intervals [start, next start) with one target each, adjacent equal returns merged.
    let mut intervals: Vec<(u32, Target)> = vec![(0, Target::Ret(default))];
    for (nr, (_, outcome)) in &merged {
        let target = match outcome {
            Outcome::Always(action) => Target::Ret(*action),
            Outcome::Rules(_) => checks.get(nr).copied().unwrap_or(Target::Ret(default)),
        };
        push_interval(&mut intervals, *nr, target);
        if let Some(after) = nr.checked_add(1) {
            push_interval(&mut intervals, after, Target::Ret(default));
        }
    }
    let tree = gen_tree(e, &intervals);

    // ENOSYS stub (runc): numbers above the highest one the profile names.
    let enosys = Target::Ret(RET_ERRNO | ENOSYS);
    let mut entry = tree;
    if plan.enosys {
        let max = |abi: Abi| {
            let single = block.abis.len() == 1;
            block
                .abis
                .iter()
                .find(|a| single || a.def.abi == abi)
                .and_then(|a| a.max_nr)
        };
        if block.abis.len() == 2 {
            let below = max(Abi::X86_64)
                .map(|m| Target::Label(e.jump(JGT, m, enosys, tree)))
                .unwrap_or(tree);
            let above = max(Abi::X32)
                .map(|m| Target::Label(e.jump(JGT, m, enosys, tree)))
                .unwrap_or(tree);
            if below != tree || above != tree {
                entry = Target::Label(e.jump(JSET, X32_SYSCALL_BIT, above, below));
            }
        } else if let Some(m) = max(Abi::Plain) {
            entry = Target::Label(e.jump(JGT, m, enosys, tree));
        }
        if block.abis.iter().any(|a| a.def.name == "SCMP_ARCH_S390X") {
            // s390x multiplexes syscall numbers above 255 through setup(2) = 0: an unknown
            // number shows up as 0 (runc).
            entry = Target::Label(e.jump(JEQ, 0, enosys, entry));
        }
    }

    // ABI check when x86_64 or x32 is alone on the audit architecture (libseccomp).
    if block.abis.len() == 1 {
        match block.abis[0].def.abi {
            Abi::X86_64 => {
                // -1 is what a tracer sets to skip a syscall: leave it to the rules.
                // (past the ENOSYS stub, as runc's stub lets it through).
                let minus_one =
                    Target::Label(e.jump(JEQ, u32::MAX, tree, Target::Ret(plan.bad_arch)));
                entry = Target::Label(e.jump(JGE, X32_SYSCALL_BIT, minus_one, entry));
            }
            Abi::X32 => {
                entry =
                    Target::Label(e.jump(JGE, X32_SYSCALL_BIT, entry, Target::Ret(plan.bad_arch)));
            }
            Abi::Plain => {}
        }
    }
    // The first instruction after the load must be a real one.
    e.materialize(entry);
    e.stmt(LD_ABS, OFF_NR)
}

/// Append interval `[start, …)` going to `target`, merging it with equal neighbours.
fn push_interval(intervals: &mut Vec<(u32, Target)>, start: u32, target: Target) {
    if let Some(last) = intervals.last_mut() {
        if last.0 == start {
            last.1 = target;
        } else if last.1 != target {
            intervals.push((start, target));
        }
    }
    // A replaced interval may now equal its predecessor.
    let n = intervals.len();
    if n >= 2 && intervals[n - 1].1 == intervals[n - 2].1 {
        intervals.pop();
    }
}

/// Binary search over `intervals` (sorted by start, the first starting at 0), with the syscall
/// number in the accumulator.
fn gen_tree(e: &mut Emitter, intervals: &[(u32, Target)]) -> Target {
    match intervals {
        [] => Target::Ret(0),
        [(_, only)] => *only,
        _ => {
            let mid = intervals.len() / 2;
            let high = gen_tree(e, &intervals[mid..]);
            let low = gen_tree(e, &intervals[..mid]);
            Target::Label(e.jump(JGE, intervals[mid].0, high, low))
        }
    }
}

/// Rules of one syscall, first match wins, none → `default`.
fn gen_rules(e: &mut Emitter, def: &ArchDef, rules: &[Rule], default: u32) -> Target {
    let mut fail = Target::Ret(default);
    for rule in rules.iter().rev() {
        let mut ok = Target::Ret(rule.action);
        for cond in rule.conds.iter().rev() {
            ok = Target::Label(gen_cond(e, def, cond, ok, fail));
        }
        fail = ok;
    }
    fail
}

fn lo(v: u64) -> u32 {
    (v & 0xffff_ffff) as u32
}

fn hi(v: u64) -> u32 {
    (v >> 32) as u32
}

/// One comparison; returns its first instruction.
fn gen_cond(e: &mut Emitter, def: &ArchDef, c: &Cond, t: Target, f: Target) -> usize {
    let lo_off = def.arg_lo(c.arg);
    let hi_off = def.arg_hi(c.arg);
    let (vl, vh) = (lo(c.value), hi(c.value));
    // The low word: a single comparison deciding between t and f.
    let low = |e: &mut Emitter| -> usize {
        match c.op {
            Op::Eq => e.jump(JEQ, vl, t, f),
            Op::Ne => e.jump(JEQ, vl, f, t),
            Op::Gt => e.jump(JGT, vl, t, f),
            Op::Ge => e.jump(JGE, vl, t, f),
            Op::Lt => e.jump(JGE, vl, f, t),
            Op::Le => e.jump(JGT, vl, f, t),
            Op::MaskedEq(mask) => {
                e.jump(JEQ, vl, t, f);
                e.stmt(AND_K, lo(mask))
            }
        };
        e.stmt(LD_ABS, lo_off)
    };
    if def.word32 {
        return low(e);
    }
    match c.op {
        Op::MaskedEq(mask) => {
            // Words whose mask is zero always match (libseccomp skips them too).
            let after_hi = if lo(mask) == 0 {
                t
            } else {
                Target::Label(low(e))
            };
            if hi(mask) == 0 {
                return e.materialize(after_hi);
            }
            e.jump(JEQ, vh, after_hi, f);
            e.stmt(AND_K, hi(mask));
            e.stmt(LD_ABS, hi_off)
        }
        Op::Eq => {
            let l = Target::Label(low(e));
            e.jump(JEQ, vh, l, f);
            e.stmt(LD_ABS, hi_off)
        }
        Op::Ne => {
            let l = Target::Label(low(e));
            e.jump(JEQ, vh, l, t);
            e.stmt(LD_ABS, hi_off)
        }
        Op::Gt | Op::Ge => {
            // hi > vh → t; hi == vh → compare lo; hi < vh → f
            let l = Target::Label(low(e));
            let eq = Target::Label(e.jump(JEQ, vh, l, f));
            e.jump(JGT, vh, t, eq);
            e.stmt(LD_ABS, hi_off)
        }
        Op::Lt | Op::Le => {
            // hi > vh → f; hi == vh → compare lo; hi < vh → t
            let l = Target::Label(low(e));
            let eq = Target::Label(e.jump(JEQ, vh, l, t));
            e.jump(JGT, vh, f, eq);
            e.stmt(LD_ABS, hi_off)
        }
    }
}

/// Check a program as the kernel does (`bpf_check_classic` and `seccomp_check_filter`, for
/// the instructions berth emits): length, opcodes, aligned loads inside `seccomp_data`,
/// jumps inside the program, a return at the end.
pub(crate) fn verify(program: &[Instruction]) -> Result<(), String> {
    let len = program.len();
    if len == 0 || len > MAX_INSNS {
        return Err(format!("program length {len} is outside 1..={MAX_INSNS}"));
    }
    for (pc, insn) in program.iter().enumerate() {
        let rest = len - pc - 1;
        match insn.code {
            LD_ABS => {
                if insn.k >= DATA_LEN || insn.k % 4 != 0 {
                    return Err(format!("instruction {pc}: load at offset {}", insn.k));
                }
            }
            AND_K | RET_K => {}
            JA => {
                if usize::try_from(insn.k).map_or(true, |k| k >= rest) {
                    return Err(format!(
                        "instruction {pc}: ja {} leaves the program",
                        insn.k
                    ));
                }
            }
            JEQ | JGT | JGE | JSET => {
                if usize::from(insn.jt) >= rest || usize::from(insn.jf) >= rest {
                    return Err(format!("instruction {pc}: jump leaves the program"));
                }
            }
            code => {
                return Err(format!(
                    "instruction {pc}: opcode {code:#x} not emitted by berth"
                ));
            }
        }
    }
    match program.last() {
        Some(insn) if insn.code == RET_K => Ok(()),
        _ => Err("program does not end with a return".to_owned()),
    }
}

/// Run a verified program on `seccomp_data` (`big_endian`: the byte order of the machine the
/// filter would run on). Returns the `SECCOMP_RET_*` value.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn run(
    program: &[Instruction],
    big_endian: bool,
    nr: u32,
    arch: u32,
    args: [u64; 6],
) -> Result<u32, String> {
    let mut data = [0u8; DATA_LEN as usize];
    let put32 = |data: &mut [u8], off: usize, v: u32| {
        let b = if big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        };
        data[off..off + 4].copy_from_slice(&b);
    };
    put32(&mut data, 0, nr);
    put32(&mut data, 4, arch);
    for (i, a) in args.iter().enumerate() {
        let b = if big_endian {
            a.to_be_bytes()
        } else {
            a.to_le_bytes()
        };
        data[16 + 8 * i..24 + 8 * i].copy_from_slice(&b);
    }
    let mut acc: u32 = 0;
    let mut pc = 0usize;
    // Jumps only go forward: at most one step per instruction.
    for _ in 0..=program.len() {
        let insn = program
            .get(pc)
            .ok_or_else(|| format!("pc {pc} outside the program"))?;
        pc += 1;
        match insn.code {
            LD_ABS => {
                let off = insn.k as usize;
                let w: [u8; 4] = data
                    .get(off..off + 4)
                    .and_then(|s| s.try_into().ok())
                    .ok_or_else(|| format!("load outside seccomp_data at {off}"))?;
                acc = if big_endian {
                    u32::from_be_bytes(w)
                } else {
                    u32::from_le_bytes(w)
                };
            }
            AND_K => acc &= insn.k,
            JA => pc += insn.k as usize,
            JEQ | JGT | JGE | JSET => {
                let taken = match insn.code {
                    JEQ => acc == insn.k,
                    JGT => acc > insn.k,
                    JGE => acc >= insn.k,
                    _ => acc & insn.k != 0,
                };
                pc += usize::from(if taken { insn.jt } else { insn.jf });
            }
            RET_K => return Ok(insn.k),
            code => return Err(format!("opcode {code:#x}")),
        }
    }
    Err("program did not return".to_owned())
}
