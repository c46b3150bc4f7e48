//! `berth policy check FILE`: reads a role policy (`berth.policy/v1`, docs/policy.md) and
//! reports every problem as `FILE:LINE:COL: what is wrong; what to do`, or a summary of the
//! valid policy.

use anyhow::Context;
use berth_trust::roles::{NamespacePattern, Policy, Requirement, Rule, Signers};
use clap::{Args, Subcommand, ValueEnum};
use std::io::Write;
use std::path::PathBuf;

/// `berth policy …`.
#[derive(Debug, Args)]
pub struct PolicyArgs {
    #[command(subcommand)]
    command: PolicyCommand,
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// Check a role policy file (berth.policy/v1): every problem with its line and column.
    Check(CheckArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The policy file.
    file: PathBuf,
    /// `json`: {"valid": bool, "problems": [{"position": {"line", "column"}, "pointer",
    /// "message", "hint"}]}.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
}

pub fn run(args: PolicyArgs) -> anyhow::Result<()> {
    match args.command {
        PolicyCommand::Check(a) => check(a),
    }
}

fn check(args: CheckArgs) -> anyhow::Result<()> {
    let bytes = std::fs::read(&args.file)
        .with_context(|| format!("failed to read {}", args.file.display()))?;
    let name = args.file.display().to_string();
    let result = Policy::parse(&bytes);
    if let Format::Json = args.format {
        let problems = match &result {
            Ok(_) => Vec::new(),
            Err(e) => e.problems.clone(),
        };
        let out = serde_json::json!({"file": name, "valid": result.is_ok(), "problems": problems});
        crate::commands::image::print(&serde_json::to_string_pretty(&out)?)?;
        return match result {
            Ok(_) => Ok(()),
            Err(e) => Err(anyhow::anyhow!(
                "{name}: {} problem(s) in the policy",
                e.problems.len()
            )),
        };
    }
    match result {
        Ok(policy) => crate::commands::image::print(&summary(&name, &policy)),
        Err(e) => {
            let mut err = std::io::stderr().lock();
            for p in &e.problems {
                let _ = writeln!(err, "{name}:{p}");
            }
            Err(anyhow::anyhow!(
                "{name}: {} problem(s) in the policy",
                e.problems.len()
            ))
        }
    }
}

fn summary(name: &str, p: &Policy) -> String {
    let mut s = format!("{name}: valid {} policy", berth_trust::roles::VERSION);
    s.push_str(&format!(
        "\n  trust stores: {}",
        if p.trust_stores.is_empty() {
            "none".to_string()
        } else {
            p.trust_stores.join(", ")
        }
    ));
    let roles: Vec<String> = p
        .roles
        .iter()
        .map(|r| match r.identities.len() {
            1 => format!("{} (1 identity)", r.name),
            n => format!("{} ({n} identities)", r.name),
        })
        .collect();
    s.push_str(&format!(
        "\n  roles: {}",
        if roles.is_empty() {
            "none".to_string()
        } else {
            roles.join(", ")
        }
    ));
    s.push_str("\n  rules (the most specific applies: by namespace, then by scope):");
    for r in &p.rules {
        s.push_str(&format!("\n    {}", rule_line(r)));
    }
    let unused: Vec<&str> = p
        .roles
        .iter()
        .filter(|role| {
            !p.rules.iter().any(|r| match &r.requirement {
                Some(Requirement::AllOf(l))
                | Some(Requirement::AtLeast {
                    of: Signers::Roles(l),
                    ..
                }) => l.contains(&role.name),
                _ => false,
            })
        })
        .map(|r| r.name.as_str())
        .collect();
    if !unused.is_empty() {
        s.push_str(&format!(
            "\n  note: no rule requires role(s) {}",
            unused.join(", ")
        ));
    }
    s
}

fn rule_line(r: &Rule) -> String {
    let scopes: Vec<String> = r.scopes.iter().map(ToString::to_string).collect();
    let ns = if r.namespaces.is_empty() && !r.namespace_selector.is_empty() {
        "namespaces *".to_string()
    } else if r.namespaces.is_empty() {
        "every namespace".to_string()
    } else {
        format!(
            "namespaces {}",
            r.namespaces
                .iter()
                .map(NamespacePattern::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let ns = if r.namespace_selector.is_empty() {
        ns
    } else {
        let labels: Vec<String> = r
            .namespace_selector
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        format!("{ns} labelled {}", labels.join(", "))
    };
    let req = match &r.requirement {
        None => "nothing verified".to_string(),
        Some(Requirement::AllOf(l)) => format!("all of {}", l.join(", ")),
        Some(Requirement::AtLeast {
            count,
            of: Signers::Roles(l),
        }) => format!("at least {count} of {}", l.join(", ")),
        Some(Requirement::AtLeast {
            count,
            of: Signers::AnyTrusted,
        }) => format!("at least {count} distinct trusted signers"),
    };
    let level = match r.statement.verification.level {
        berth_trust::Level::Strict => "strict",
        berth_trust::Level::Permissive => "permissive",
        berth_trust::Level::Audit => "audit",
        berth_trust::Level::Skip => "skip",
    };
    format!(
        "{}: scopes {}; {ns}; {level}; {req}",
        r.name,
        scopes.join(", ")
    )
}
