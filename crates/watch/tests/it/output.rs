//! The output formats: `berth.watch/v1` records checked field by field, Falco alerts
//! checked against the shape of Falco's documented `json_output`, Prometheus counters
//! parsed back.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use berth_oci::timefmt::parse_rfc3339;
use berth_watch::detect::{Action, Decision, Detector, ProcFiles, Reason, Rule, Verdict};
use berth_watch::event::{Bind, Connect, Event, FileOrigin};
use berth_watch::output::{Clock, Counters, FalcoAlert, RECORD_SCHEMA, Record, boot_ns_now};
use serde_json::{Value, json};

use crate::detect::{container, exec};
use crate::support::sha256;

fn boot() -> SystemTime {
    UNIX_EPOCH + Duration::new(1_764_900_000, 0)
}

fn drift() -> (Event, Decision) {
    let mut e = exec(4242, "/tmp/miner", 77, FileOrigin::Upper);
    e.boot_ns = 3_000_000_123;
    e.argv = vec!["/tmp/miner".into(), "-o".into(), "pool.example:3333".into()];
    // a drift decided through the detector (nothing to read at pid 0: unreadable)
    e.pid = 0;
    let p = berth_watch::profile::Profile::from_dirs(&[], Default::default()).unwrap();
    let mut d = Detector::default().decide(
        &Event::Exec(e.clone()),
        Some(&container("web")),
        Some(&p),
        &ProcFiles::new(std::path::Path::new("/proc")),
    );
    e.pid = 4242;
    d.reason = Reason::NotInImage;
    d.sha256 = Some(sha256(b"miner"));
    d.hashed_via = Some("root");
    d.action = Action::Kill { pid: 4242 };
    (Event::Exec(e), d)
}

fn to_value<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap()
}

#[test]
fn an_exec_drift_record_has_every_documented_field() {
    let (event, d) = drift();
    let c = container("web");
    let clock = Clock::booted_at(boot());
    let written = boot() + Duration::from_nanos(3_000_250_123);
    let r = Record::new(&event, Some(&c), &d, &clock, written);
    let line = r.to_line();
    assert!(
        line.ends_with('\n') && !line[..line.len() - 1].contains('\n'),
        "one line"
    );
    let v: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["schema"], RECORD_SCHEMA);
    assert_eq!(v["schema"], "berth.watch/v1");
    let t = parse_rfc3339(v["time"].as_str().unwrap()).unwrap();
    assert_eq!(
        t,
        boot() + Duration::from_nanos(3_000_000_123),
        "{}",
        v["time"]
    );
    assert_eq!(v["time"], "2025-12-05T02:00:03.000000123Z");
    assert_eq!(v["kind"], "exec");
    assert_eq!(
        v["container"],
        json!({"id": c.id, "name": "web", "runtime": "berth", "image": "registry.example/app:1"})
    );
    assert_eq!(
        v["process"],
        json!({"pid": 4242, "ppid": 1, "uid": 0, "exe": "/tmp/miner", "argv": ["/tmp/miner", "-o", "pool.example:3333"]})
    );
    assert_eq!(v["verdict"], "drift");
    assert_eq!(v["rule"], "exec_drift");
    let det = &v["details"];
    assert_eq!(det["reason"], "not_in_image");
    assert_eq!(det["origin"], "upper");
    assert_eq!(det["ino"], 77);
    assert_eq!(det["argv_truncated"], false);
    assert_eq!(det["interpreted"], false);
    assert!(det.get("judged").is_none(), "only for an interpreted exec");
    assert_eq!(det["sha256"], sha256(b"miner").as_str());
    assert_eq!(det["hashed_via"], "root");
    assert_eq!(det["action"], json!({"type": "kill", "pid": 4242}));
    assert!(det["decision_us"].is_u64());
    assert_eq!(det["age_us"], 250, "from the kernel's event to the record");
    assert!(
        det.get("verdict").is_none() && det.get("rule").is_none(),
        "not repeated in details"
    );
}

/// A bind outside the image's declared ports: the record's `address` and `protocol`, and
/// Falco's alert with its server-side fields (`fd.sip`, `fd.sport`).
#[test]
fn a_bind_record_and_its_falco_alert() {
    let clock = Clock::booted_at(boot());
    let e = Event::Bind(Bind {
        cgroup_id: 1,
        pid: 9,
        uid: 0,
        boot_ns: 1,
        address: "0.0.0.0:4444".parse().unwrap(),
        stream: true,
    });
    let mut c = container("web");
    c.declared_ports = Some(Vec::new());
    let files = ProcFiles::new(std::path::Path::new("/proc"));
    let d = Detector::default().decide(&e, Some(&c), None, &files);
    let v = to_value(&Record::new(&e, Some(&c), &d, &clock, SystemTime::now()));
    assert_eq!(v["kind"], "bind");
    assert_eq!(
        (&v["verdict"], &v["rule"]),
        (&json!("alert"), &json!("listen_outside_profile"))
    );
    assert_eq!(v["details"]["reason"], "not_declared");
    assert_eq!(v["details"]["address"], "0.0.0.0:4444");
    assert_eq!(v["details"]["protocol"], "tcp");
    assert_eq!(v["process"]["pid"], 9);
    let a = FalcoAlert::new(&e, Some(&c), &d, &clock, SystemTime::now(), "node-1").unwrap();
    assert_eq!(a.rule, "Listening on a port the image does not declare");
    assert_eq!(a.output_fields["evt.type"], "bind");
    assert_eq!(a.output_fields["fd.sip"], "0.0.0.0");
    assert_eq!(a.output_fields["fd.sport"], 4444);
    assert_eq!(a.output_fields["fd.l4proto"], "tcp");
    assert!(a.output.contains("address=0.0.0.0:4444"), "{}", a.output);
}

#[test]
fn connect_and_dropped_records_leave_out_what_they_do_not_know() {
    let clock = Clock::booted_at(boot());
    let e = Event::Connect(Connect {
        cgroup_id: 1,
        pid: 9,
        uid: 1000,
        boot_ns: 1,
        destination: "[2001:db8::7]:443".parse().unwrap(),
        stream: false,
        blocked: true,
    });
    let files = ProcFiles::new(std::path::Path::new("/proc"));
    let d = Detector::default().decide(&e, Some(&container("web")), None, &files);
    let v = to_value(&Record::new(
        &e,
        Some(&container("web")),
        &d,
        &clock,
        SystemTime::now(),
    ));
    assert_eq!(v["kind"], "connect");
    assert_eq!(
        v["process"],
        json!({"pid": 9, "ppid": null, "uid": 1000, "exe": null, "argv": null})
    );
    assert_eq!(v["verdict"], "alert");
    assert_eq!(v["rule"], "connect_outside_profile");
    assert_eq!(v["details"]["destination"], "[2001:db8::7]:443");
    assert_eq!(v["details"]["protocol"], "udp");
    assert_eq!(v["details"]["blocked"], true);
    assert_eq!(v["details"]["action"], json!({"type": "blocked"}));

    let now = UNIX_EPOCH + Duration::new(1_800_000_000, 500);
    let e = Event::Dropped { count: 12 };
    let d = Detector::default().decide(&e, None, None, &files);
    let v = to_value(&Record::new(&e, None, &d, &clock, now));
    assert_eq!(
        (
            v["kind"].as_str(),
            v["verdict"].as_str(),
            v["rule"].as_str()
        ),
        (Some("dropped"), Some("dropped"), Some("events_dropped"))
    );
    assert_eq!(v["container"], Value::Null);
    assert_eq!(v["process"], Value::Null);
    assert_eq!(v["details"]["count"], 12);
    assert!(
        v["details"].get("age_us").is_none(),
        "a drop has no event time"
    );
    assert_eq!(
        parse_rfc3339(v["time"].as_str().unwrap()),
        Some(now),
        "a drop is stamped now"
    );
}

/// The shape of Falco's `json_output` alert as its documentation shows it (a syscall rule
/// in a container; values are ours, field names and JSON types are Falco's).
const FALCO_DOCUMENTED_SHAPE: &str = r#"{
  "hostname": "node-1",
  "output": "22:39:47.261363951: Notice Shell spawned in a container (user_uid=0 command=sh -c id container_id=28c0c7a20575 container_name=web image=docker.io/library/nginx)",
  "priority": "Notice",
  "rule": "Terminal shell in container",
  "source": "syscall",
  "tags": ["container", "mitre_execution", "shell"],
  "time": "2025-02-26T22:39:47.261363951Z",
  "output_fields": {
    "container.id": "28c0c7a20575",
    "container.name": "web",
    "container.image.repository": "docker.io/library/nginx",
    "container.image.tag": "1.27",
    "evt.time": 1740609587261363951,
    "evt.type": "execve",
    "proc.cmdline": "sh -c id",
    "proc.exepath": "/bin/sh",
    "proc.name": "sh",
    "proc.pid": 4242,
    "proc.ppid": 4200,
    "user.uid": 0,
    "fd.name": "/etc/shadow"
  }
}"#;

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_u64() || n.is_i64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[test]
fn falco_alerts_have_falcos_fields_names_and_types() {
    let (event, d) = drift();
    let mut c = container("web");
    c.image = "docker.io/library/nginx:1.27".into();
    let clock = Clock::booted_at(boot());
    let a = FalcoAlert::new(&event, Some(&c), &d, &clock, SystemTime::now(), "node-1").unwrap();
    let ours: Value = serde_json::from_str(&a.to_line()).unwrap();
    let theirs: Value = serde_json::from_str(FALCO_DOCUMENTED_SHAPE).unwrap();
    let (ours_o, theirs_o) = (ours.as_object().unwrap(), theirs.as_object().unwrap());
    assert_eq!(
        ours_o.keys().collect::<Vec<_>>(),
        theirs_o.keys().collect::<Vec<_>>(),
        "the same top-level fields as Falco"
    );
    for (k, v) in theirs_o {
        assert_eq!(
            json_type(&ours[k]),
            json_type(v),
            "top-level {k}: {}",
            ours[k]
        );
    }
    let of = ours["output_fields"].as_object().unwrap();
    for (k, v) in theirs["output_fields"].as_object().unwrap() {
        if k == "fd.name" {
            continue; // an exec has no fd (checked with the connect below)
        }
        assert!(of.contains_key(k), "output_fields.{k} missing: {of:?}");
        assert_eq!(
            json_type(&of[k]),
            json_type(v),
            "output_fields.{k}: {}",
            of[k]
        );
    }
    // values as Falco writes them
    assert_eq!(ours["priority"], "Critical");
    assert_eq!(ours["source"], "syscall");
    assert_eq!(ours["hostname"], "node-1");
    assert_eq!(ours["rule"], "Drift: exec of a file not in the image");
    let tags: Vec<&str> = ours["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    let mut sorted = tags.clone();
    sorted.sort_unstable();
    assert_eq!(tags, sorted, "Falco lists tags sorted");
    assert!(
        tags.contains(&"container") && tags.contains(&"mitre_persistence"),
        "{tags:?}"
    );
    assert_eq!(
        ours["time"], "2025-12-05T02:00:03.000000123Z",
        "nine fraction digits"
    );
    let out = ours["output"].as_str().unwrap();
    assert!(out.starts_with("02:00:03.000000123: Critical "), "{out}");
    assert!(
        out.contains("proc_exepath=/tmp/miner") && out.contains("container_name=web"),
        "{out}"
    );
    assert_eq!(of["evt.time"], 1_764_900_003_000_000_123u64);
    assert_eq!(
        of["container.id"],
        &c.id[..12],
        "Falco's container.id is the 12-character short id"
    );
    assert_eq!(of["container.full_id"], c.id.as_str());
    assert_eq!(of["container.image.repository"], "docker.io/library/nginx");
    assert_eq!(of["container.image.tag"], "1.27");
    assert_eq!(
        of["proc.cmdline"], "miner -o pool.example:3333",
        "proc.name then the arguments"
    );
    assert_eq!(of["proc.name"], "miner");
    assert_eq!(of["proc.exepath"], "/tmp/miner");
    assert_eq!(of["proc.is_exe_upper_layer"], true);
    assert_eq!(of["proc.exe_ino"], 77);
    assert_eq!(of["user.uid"], 0);

    // a connect: fd.* fields
    let e = Event::Connect(Connect {
        cgroup_id: 1,
        pid: 9,
        uid: 0,
        boot_ns: 1,
        destination: "203.0.113.9:443".parse().unwrap(),
        stream: true,
        blocked: false,
    });
    let files = ProcFiles::new(std::path::Path::new("/proc"));
    let d = Detector::default().decide(&e, Some(&c), None, &files);
    let a =
        to_value(&FalcoAlert::new(&e, Some(&c), &d, &clock, SystemTime::now(), "node-1").unwrap());
    let of = &a["output_fields"];
    assert_eq!(json_type(&of["fd.name"]), "string");
    assert_eq!(
        (
            of["fd.name"].as_str(),
            of["fd.rip"].as_str(),
            of["fd.rport"].as_u64(),
            of["fd.l4proto"].as_str()
        ),
        (
            Some("203.0.113.9:443"),
            Some("203.0.113.9"),
            Some(443),
            Some("tcp")
        )
    );
    assert_eq!(
        (a["priority"].as_str(), of["evt.type"].as_str()),
        (Some("Warning"), Some("connect"))
    );

    // an unknown container name is null in output_fields and <NA> in the text, as Falco
    let mut anon = c.clone();
    anon.name.clear();
    let a =
        to_value(&FalcoAlert::new(&e, Some(&anon), &d, &clock, SystemTime::now(), "h").unwrap());
    assert_eq!(a["output_fields"]["container.name"], Value::Null);
    assert!(
        a["output"]
            .as_str()
            .unwrap()
            .contains("container_name=<NA>")
    );
}

#[test]
fn expected_events_make_no_falco_alert() {
    let e = Event::Exec(exec(1, "/bin/sh", 1, FileOrigin::Lower));
    let p = berth_watch::profile::Profile::from_dirs(&[], Default::default()).unwrap();
    let files = ProcFiles::new(std::path::Path::new("/proc"));
    let d = Detector::default().decide(&e, Some(&container("web")), Some(&p), &files);
    assert_eq!(d.verdict, Verdict::Expected);
    assert!(
        FalcoAlert::new(
            &e,
            Some(&container("web")),
            &d,
            &Clock::now(),
            SystemTime::now(),
            "h"
        )
        .is_none()
    );
}

/// `name{labels} value` lines → map; checks every sample's family has HELP and TYPE counter.
fn parse_prometheus(text: &str) -> BTreeMap<String, u64> {
    let mut typed = Vec::new();
    let mut helped = Vec::new();
    let mut samples = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            helped.push(rest.split(' ').next().unwrap().to_owned());
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert_eq!(kind, "counter");
            typed.push(name.to_owned());
        } else {
            let (series, value) = line.rsplit_once(' ').unwrap();
            let family = series.split('{').next().unwrap();
            assert!(
                family.ends_with("_total"),
                "counters end in _total: {family}"
            );
            assert!(
                typed.contains(&family.to_owned()) && helped.contains(&family.to_owned()),
                "{family}"
            );
            samples.insert(series.to_owned(), value.parse().unwrap());
        }
    }
    samples
}

#[test]
fn prometheus_counters_count_events_alerts_drops_and_kills() {
    let mut c = Counters::default();
    let zero = parse_prometheus(&c.render());
    assert_eq!(
        zero["berth_watch_alerts_total{rule=\"exec_drift\"}"], 0,
        "every series is present from the start"
    );
    assert_eq!(zero["berth_watch_events_total{kind=\"connect\"}"], 0);
    let (drift_event, drift) = drift();
    c.record(&drift_event, &drift);
    c.record(&drift_event, &drift);
    // one of the two had exited before its kill: only the other counts
    c.killed();
    let files = ProcFiles::new(std::path::Path::new("/proc"));
    let drop = Event::Dropped { count: 40 };
    c.record(
        &drop,
        &Detector::default().decide(&drop, None, None, &files),
    );
    let lower = Event::Exec(exec(1, "/bin/sh", 1, FileOrigin::Lower));
    let p = berth_watch::profile::Profile::from_dirs(&[], Default::default()).unwrap();
    c.record(
        &lower,
        &Detector::default().decide(&lower, Some(&container("w")), Some(&p), &files),
    );
    let s = parse_prometheus(&c.render());
    assert_eq!(s["berth_watch_events_total{kind=\"exec\"}"], 3);
    assert_eq!(s["berth_watch_events_total{kind=\"dropped\"}"], 1);
    assert_eq!(s["berth_watch_alerts_total{rule=\"exec_drift\"}"], 2);
    assert_eq!(s["berth_watch_alerts_total{rule=\"events_dropped\"}"], 1);
    assert_eq!(
        s["berth_watch_alerts_total{rule=\"connect_outside_profile\"}"],
        0
    );
    assert_eq!(s["berth_watch_verdicts_total{verdict=\"expected\"}"], 1);
    assert_eq!(s["berth_watch_verdicts_total{verdict=\"drift\"}"], 2);
    assert_eq!(s["berth_watch_dropped_events_total"], 40);
    assert_eq!(s["berth_watch_kills_total"], 1);
    assert_eq!(s["berth_watch_held_lost_total"], 0);
    assert_eq!(s.len(), 5 + 6 + Rule::ALL.len() + 3);
    c.held_lost = 7;
    assert_eq!(
        parse_prometheus(&c.render())["berth_watch_held_lost_total"],
        7
    );
}

#[test]
fn the_clock_maps_boot_time_to_now() {
    let clock = Clock::now();
    let wall = clock.wall(boot_ns_now());
    let skew = SystemTime::now()
        .duration_since(wall)
        .unwrap_or_else(|e| e.duration());
    assert!(skew < Duration::from_secs(1), "{skew:?}");
}
