//! `berth import ROOTFS.tar|DIR NAME[:TAG]`: a root filesystem as a one-layer image in the
//! local store, as `docker import`/`podman import`; prints the image id (its config digest).
//!
//! `--change 'INSTRUCTION ARGS'` sets the image config as `docker import --change` does
//! (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR); the config's
//! time is `--source-date-epoch` or `SOURCE_DATE_EPOCH` when set (reproducible builds), else now.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use clap::Args;
use serde_json::{Map, Value, json};

use super::DataArgs;
use berth_transfer::ImportOptions;

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// A tar archive (plain or gzip) or a directory holding the root filesystem.
    source: PathBuf,
    /// The name to give the image.
    #[arg(value_parser = super::parse_reference)]
    name: berth_oci::Reference,
    /// A comment for the image's history entry.
    #[arg(long, short)]
    message: Option<String>,
    /// The platform the image is for (default: this machine's).
    #[arg(long, value_name = "OS/ARCH[/VARIANT]", value_parser = super::parse_platform)]
    platform: Option<berth_oci::Platform>,
    /// Set the image config with a Dockerfile instruction: CMD, ENTRYPOINT (JSON array or
    /// shell form), ENV K=V, EXPOSE PORT[/PROTO], LABEL K=V, STOPSIGNAL, USER, VOLUME,
    /// WORKDIR. Repeatable; later ones win.
    #[arg(long, short, value_name = "INSTRUCTION", value_parser = parse_change)]
    change: Vec<Change>,
    /// The time the image says it was made, in seconds since 1970 (as reproducible builds
    /// set SOURCE_DATE_EPOCH; default: now).
    #[arg(long, env = "SOURCE_DATE_EPOCH", value_name = "SECONDS")]
    source_date_epoch: Option<u64>,
    #[command(flatten)]
    data: DataArgs,
}

/// One `--change` instruction, parsed.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Cmd(Vec<String>),
    Entrypoint(Vec<String>),
    Env(String, String),
    Expose(String),
    Label(String, String),
    StopSignal(String),
    User(String),
    Volume(String),
    Workdir(String),
}

/// `INSTRUCTION ARGS` as Dockerfile has it (the keyword in any case).
pub fn parse_change(arg: &str) -> Result<Change, String> {
    let arg = arg.trim();
    let (word, rest) = arg.split_once(char::is_whitespace).unwrap_or((arg, ""));
    let rest = rest.trim();
    let need = |what: &str| -> Result<String, String> {
        if rest.is_empty() {
            Err(format!("{} needs {what}", word.to_ascii_uppercase()))
        } else {
            Ok(rest.to_owned())
        }
    };
    let pair = |what: &str| -> Result<(String, String), String> {
        let rest = need(what)?;
        let (k, v) = match rest.split_once('=') {
            Some((k, v)) => (k.trim(), v.trim()),
            // `ENV KEY VALUE`, the old form
            None => rest
                .split_once(char::is_whitespace)
                .map(|(k, v)| (k, v.trim()))
                .ok_or_else(|| format!("{} needs {what}", word.to_ascii_uppercase()))?,
        };
        if k.is_empty() || k.contains(char::is_whitespace) {
            return Err(format!("{}: bad key {k:?}", word.to_ascii_uppercase()));
        }
        Ok((k.to_owned(), unquote(v).to_owned()))
    };
    Ok(match word.to_ascii_uppercase().as_str() {
        "CMD" => Change::Cmd(command(&need("a command")?)?),
        "ENTRYPOINT" => Change::Entrypoint(command(&need("a command")?)?),
        "ENV" => {
            let (k, v) = pair("KEY=VALUE")?;
            Change::Env(k, v)
        }
        "LABEL" => {
            let (k, v) = pair("KEY=VALUE")?;
            Change::Label(k, v)
        }
        "EXPOSE" => {
            let p = need("a port")?;
            let (port, proto) = p.split_once('/').unwrap_or((&p, "tcp"));
            if port.parse::<u16>().is_err() || !matches!(proto, "tcp" | "udp" | "sctp") {
                return Err(format!("EXPOSE: {p:?} is not PORT[/tcp|udp|sctp]"));
            }
            Change::Expose(format!("{port}/{proto}"))
        }
        "STOPSIGNAL" => Change::StopSignal(need("a signal")?),
        "USER" => Change::User(need("a user")?),
        "VOLUME" => Change::Volume(need("a path")?),
        "WORKDIR" => Change::Workdir(need("a path")?),
        other => {
            return Err(format!(
                "{other:?} is not an instruction --change takes (CMD, ENTRYPOINT, ENV, EXPOSE, \
                 LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR)"
            ));
        }
    })
}

/// A value in double quotes without them.
fn unquote(v: &str) -> &str {
    v.strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(v)
}

/// The exec form (a JSON array of strings) as it is; the shell form through `/bin/sh -c`.
fn command(text: &str) -> Result<Vec<String>, String> {
    if text.starts_with('[') {
        serde_json::from_str(text)
            .map_err(|e| format!("{text:?} is not a JSON array of strings: {e}"))
    } else {
        Ok(vec!["/bin/sh".into(), "-c".into(), text.into()])
    }
}

/// The image config's `config` object the changes make, in their order.
pub fn apply(changes: &[Change]) -> Map<String, Value> {
    let mut c = Map::new();
    for ch in changes {
        match ch {
            Change::Cmd(v) => {
                c.insert("Cmd".into(), json!(v));
            }
            Change::Entrypoint(v) => {
                c.insert("Entrypoint".into(), json!(v));
            }
            Change::Env(k, v) => {
                let env = c.entry("Env").or_insert_with(|| json!([]));
                if let Some(list) = env.as_array_mut() {
                    let prefix = format!("{k}=");
                    list.retain(|e| !e.as_str().is_some_and(|e| e.starts_with(&prefix)));
                    list.push(json!(format!("{k}={v}")));
                }
            }
            Change::Label(k, v) => set(&mut c, "Labels", k, json!(v)),
            Change::Expose(p) => set(&mut c, "ExposedPorts", p, json!({})),
            Change::Volume(p) => set(&mut c, "Volumes", p, json!({})),
            Change::StopSignal(s) => {
                c.insert("StopSignal".into(), json!(s));
            }
            Change::User(u) => {
                c.insert("User".into(), json!(u));
            }
            Change::Workdir(w) => {
                c.insert("WorkingDir".into(), json!(w));
            }
        }
    }
    c
}

/// `c[object][key] = value`, making `c[object]` an object first.
fn set(c: &mut Map<String, Value>, object: &str, key: &str, value: Value) {
    let o = c.entry(object).or_insert_with(|| json!({}));
    if !o.is_object() {
        *o = json!({});
    }
    if let Some(o) = o.as_object_mut() {
        o.insert(key.to_owned(), value);
    }
}

pub fn run(args: ImportArgs) -> anyhow::Result<()> {
    let store = args.data.open()?;
    let opts = ImportOptions {
        message: args.message,
        platform: args.platform.unwrap_or_else(berth_oci::Platform::host),
        config: apply(&args.change),
        created: args
            .source_date_epoch
            .map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s)),
    };
    let name = args.name.to_string();
    let imported = super::runtime()?
        .block_on(berth_transfer::archive::import(
            &store,
            &args.source,
            &name,
            &opts,
        ))
        .with_context(|| format!("failed to import {}", args.source.display()))?;
    super::print(imported.config.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_parse_as_dockerfile_instructions() {
        assert_eq!(
            parse_change(r#"ENTRYPOINT ["/usr/local/bin/berth", "admission"]"#),
            Ok(Change::Entrypoint(vec![
                "/usr/local/bin/berth".into(),
                "admission".into()
            ]))
        );
        assert_eq!(
            parse_change("cmd echo hi"),
            Ok(Change::Cmd(vec![
                "/bin/sh".into(),
                "-c".into(),
                "echo hi".into()
            ]))
        );
        assert_eq!(
            parse_change("LABEL org.opencontainers.image.source=\"https://x/y\""),
            Ok(Change::Label(
                "org.opencontainers.image.source".into(),
                "https://x/y".into()
            ))
        );
        assert_eq!(
            parse_change("ENV PATH /bin"),
            Ok(Change::Env("PATH".into(), "/bin".into()))
        );
        assert_eq!(
            parse_change("EXPOSE 8443"),
            Ok(Change::Expose("8443/tcp".into()))
        );
        assert_eq!(
            parse_change("USER 65532:65532"),
            Ok(Change::User("65532:65532".into()))
        );
        for bad in [
            "RUN rm -rf /",
            "USER",
            "EXPOSE 99999",
            "EXPOSE 80/icmp",
            "ENTRYPOINT [1, 2]",
            "LABEL =x",
            "ENV",
        ] {
            assert!(parse_change(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn later_changes_win_and_env_keys_are_replaced() {
        let changes: Vec<Change> = [
            "ENV A=1",
            "ENV B=2",
            "ENV A=3",
            "USER 0",
            "USER 65532",
            "LABEL a=1",
            "LABEL b=2",
            "EXPOSE 8443/tcp",
            "WORKDIR /",
        ]
        .iter()
        .map(|c| parse_change(c).unwrap())
        .collect();
        assert_eq!(
            Value::Object(apply(&changes)),
            json!({
                "Env": ["B=2", "A=3"],
                "User": "65532",
                "Labels": {"a": "1", "b": "2"},
                "ExposedPorts": {"8443/tcp": {}},
                "WorkingDir": "/",
            })
        );
        assert!(apply(&[]).is_empty());
    }
}
