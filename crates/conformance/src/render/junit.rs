//! The report as JUnit XML, for CI systems (GitLab's unit test reports, Jenkins' JUnit
//! plugin, GitHub actions that read JUnit).
//!
//! Layout: one `<testsuites>` with the run's totals; one `<testsuite>` per workflow (`name` =
//! the workflow, with the registry, namespace, spec version and tool as `<properties>`); one
//! `<testcase>` per check with `classname` = the workflow (GitLab shows it as the suite) and
//! `name` = the check id, `time` in seconds. A failed check carries
//! `<failure message="reason" type="MUST">` whose text lists the check's title, spec section
//! and requests; a skipped one `<skipped message="reason"/>`.
//!
//! **Warnings** (a violated SHOULD) have no JUnit element of their own. They are written as
//! passing testcases — a SHOULD does not fail a build, as it does not fail the run — with a
//! `<system-out>` that starts `warning: ` and gives the reason (GitLab and Jenkins show it).
//!
//! **The optional `main` group** (checks beyond v1.1, from the spec's `main` branch) is its
//! own `<testsuite name="main">` with the property `optional` = `true` and the spec version
//! `main`. Its failures do not fail the run, so they do not fail a CI build either: an
//! optional check that failed is written like a warning (a passing testcase whose
//! `<system-out>` starts `optional check failed: `), and the `failures` counts leave it out.
//!
//! **Schema**: the document is valid against `junit-10.xsd`, the JUnit schema of Jenkins'
//! xunit plugin that CI tools follow (a test validates every report against it). That schema
//! has no `<properties>` in a `<testcase>` and no `skipped` or `timestamp` on `<testsuites>`:
//! a check's level and spec link are in its failure text (and the JSON report), and the
//! counts and start time are on each `<testsuite>`.

use super::{escape, escape_into, seconds};
use crate::model::{CheckResult, Exchange, Report, Status};

/// Render `report` as a JUnit XML document (UTF-8).
pub fn render(report: &Report) -> String {
    let mut out = String::with_capacity(4096 + report.checks.len() * 512);
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let t = &report.totals;
    out.push_str(&format!(
        "<testsuites name=\"berth conformance {}/{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" time=\"{}\">\n",
        escape(&report.registry),
        escape(&report.namespace),
        t.total(),
        report.required().fail,
        seconds(report.duration_ms),
    ));
    for w in &report.summary {
        let checks: Vec<&CheckResult> = report
            .checks
            .iter()
            .filter(|c| c.info.workflow == w.workflow)
            .collect();
        let time: u64 = checks.iter().map(|c| c.duration_ms).sum();
        out.push_str(&format!(
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" time=\"{}\" timestamp=\"{}\" hostname=\"{}\">\n",
            w.workflow,
            w.counts.total(),
            if w.optional { 0 } else { w.counts.fail },
            w.counts.skip,
            seconds(time),
            escape(&report.started_at),
            escape(&report.registry),
        ));
        out.push_str("    <properties>\n");
        for (name, value) in [
            ("registry", report.registry.as_str()),
            ("namespace", report.namespace.as_str()),
            (
                "spec_version",
                if w.optional {
                    "main"
                } else {
                    report.spec_version.as_str()
                },
            ),
            ("tool", report.tool.as_str()),
        ] {
            property(&mut out, "      ", name, value);
        }
        if w.optional {
            property(&mut out, "      ", "optional", "true");
        }
        out.push_str("    </properties>\n");
        for c in checks {
            testcase(&mut out, c);
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

fn property(out: &mut String, indent: &str, name: &str, value: &str) {
    out.push_str(indent);
    out.push_str("<property name=\"");
    escape_into(out, name);
    out.push_str("\" value=\"");
    attribute_into(out, value);
    out.push_str("\"/>\n");
}

/// Escaped for an attribute value, with line breaks kept (as character references: a
/// literal newline in an attribute is normalized to a space by every XML parser).
fn attribute_into(out: &mut String, s: &str) {
    let mut escaped = String::with_capacity(s.len());
    escape_into(&mut escaped, s);
    out.push_str(
        &escaped
            .replace('\n', "&#10;")
            .replace('\r', "&#13;")
            .replace('\t', "&#9;"),
    );
}

fn testcase(out: &mut String, c: &CheckResult) {
    out.push_str(&format!(
        "    <testcase classname=\"{}\" name=\"{}\" time=\"{}\">\n",
        c.info.workflow,
        escape(&c.info.id),
        seconds(c.duration_ms)
    ));
    match c.outcome.status {
        Status::Pass => {}
        Status::Fail if c.info.optional => {
            out.push_str("      <system-out>");
            escape_into(
                out,
                &format!(
                    "optional check failed: {}\n(beyond distribution-spec v1.1: does not fail the run)\n\n{}",
                    c.outcome.reason,
                    details(c)
                ),
            );
            out.push_str("</system-out>\n");
        }
        Status::Fail => {
            out.push_str("      <failure message=\"");
            attribute_into(out, &c.outcome.reason);
            out.push_str(&format!("\" type=\"{}\">", c.info.level));
            escape_into(out, &details(c));
            out.push_str("</failure>\n");
        }
        Status::Skip => {
            out.push_str("      <skipped message=\"");
            attribute_into(out, &c.outcome.reason);
            out.push_str("\"/>\n");
        }
        Status::Warn => {
            out.push_str("      <system-out>");
            escape_into(
                out,
                &format!("warning: {}\n\n{}", c.outcome.reason, details(c)),
            );
            out.push_str("</system-out>\n");
        }
    }
    out.push_str("    </testcase>\n");
}

/// What a CI log should show of a check that did not pass: what it verifies, where the spec
/// says so, and the requests it made.
fn details(c: &CheckResult) -> String {
    let mut s = format!(
        "{} [{}]: {}\n{}\n{}\n",
        c.info.id, c.info.level, c.info.title, c.outcome.reason, c.info.spec_url
    );
    for e in &c.exchanges {
        s.push_str(&exchange_line(e));
        s.push('\n');
    }
    if let Some(e) = &c.evidence {
        s.push_str(&format!(
            "implementation did: {}\nspecification requires: {}\n",
            e.observed, e.required
        ));
        for item in &e.input {
            s.push_str(&format!("input: {}\n{}\n", item.label, item.text));
        }
    }
    s
}

fn exchange_line(e: &Exchange) -> String {
    let result = match (e.status, &e.error) {
        (Some(status), _) => status.to_string(),
        (None, Some(error)) => format!("error: {error}"),
        (None, None) => "no response".to_owned(),
    };
    format!("{} {} -> {}", e.method, e.url, result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::sample_report;

    /// An element of a strictly parsed XML document.
    #[derive(Debug)]
    struct El {
        name: String,
        attrs: Vec<(String, String)>,
        children: Vec<El>,
        text: String,
    }

    impl El {
        fn attr(&self, name: &str) -> &str {
            self.attrs
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
                .unwrap_or_else(|| panic!("<{}> has no {name}", self.name))
        }

        fn all(&self, name: &str) -> Vec<&El> {
            self.children.iter().filter(|c| c.name == name).collect()
        }
    }

    /// A small, strict XML parser for what the renderer writes (declaration, elements,
    /// attributes, text, the five entities and numeric references): panics on anything
    /// not well-formed — a raw `<` or `&`, a mismatched end tag, a character XML 1.0 does
    /// not allow, an unknown entity, a second root.
    fn parse(doc: &str) -> El {
        let rest = doc
            .strip_prefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")
            .expect("XML declaration first");
        for c in rest.chars() {
            let ok = matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..);
            assert!(ok, "character {c:?} is not allowed in XML 1.0");
        }
        let mut stack: Vec<El> = Vec::new();
        let mut root = None;
        let mut s = rest;
        while !s.is_empty() {
            if let Some(tag) = s.strip_prefix('<') {
                let end = tag.find('>').expect("unterminated tag");
                let (inner, after) = (&tag[..end], &tag[end + 1..]);
                s = after;
                if let Some(name) = inner.strip_prefix('/') {
                    let el = stack.pop().expect("end tag without start");
                    assert_eq!(el.name, name, "mismatched end tag");
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(el),
                        None => {
                            assert!(root.is_none(), "two roots");
                            root = Some(el);
                        }
                    }
                    continue;
                }
                let (inner, empty) = match inner.strip_suffix('/') {
                    Some(i) => (i, true),
                    None => (inner, false),
                };
                let name_end = inner.find(' ').unwrap_or(inner.len());
                let mut el = El {
                    name: inner[..name_end].to_owned(),
                    attrs: Vec::new(),
                    children: Vec::new(),
                    text: String::new(),
                };
                let mut a = inner[name_end..].trim_start();
                while !a.is_empty() {
                    let eq = a.find("=\"").expect("attribute without a quoted value");
                    let name = &a[..eq];
                    assert!(
                        name.chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
                        "attribute name {name:?}"
                    );
                    let v = &a[eq + 2..];
                    let close = v.find('"').expect("unterminated attribute");
                    assert!(!el.attrs.iter().any(|(n, _)| n == name), "duplicate {name}");
                    el.attrs.push((name.to_owned(), unescape(&v[..close])));
                    a = v[close + 1..].trim_start();
                }
                if empty {
                    stack
                        .last_mut()
                        .expect("empty element outside the root")
                        .children
                        .push(el);
                } else {
                    stack.push(el);
                }
            } else {
                let end = s.find('<').unwrap_or(s.len());
                let text = unescape(&s[..end]);
                match stack.last_mut() {
                    Some(el) => el.text.push_str(&text),
                    None => assert!(text.trim().is_empty(), "text outside the root"),
                }
                s = &s[end..];
            }
        }
        assert!(stack.is_empty(), "unclosed elements");
        root.expect("a root element")
    }

    fn unescape(s: &str) -> String {
        assert!(!s.contains('<'), "raw < in {s:?}");
        let mut out = String::new();
        let mut rest = s;
        while let Some(i) = rest.find('&') {
            out.push_str(&rest[..i]);
            let end = rest[i..].find(';').expect("unterminated reference") + i;
            let entity = &rest[i + 1..end];
            out.push(match entity {
                "amp" => '&',
                "lt" => '<',
                "gt" => '>',
                "quot" => '"',
                "apos" => '\'',
                _ => {
                    let n = if let Some(hex) = entity.strip_prefix("#x") {
                        u32::from_str_radix(hex, 16).expect("hex reference")
                    } else {
                        entity
                            .strip_prefix('#')
                            .unwrap_or_else(|| panic!("unknown entity &{entity};"))
                            .parse()
                            .expect("decimal reference")
                    };
                    char::from_u32(n).expect("reference to a character")
                }
            });
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        out
    }

    #[test]
    fn one_suite_per_workflow_one_case_per_check() {
        let report = sample_report();
        let root = parse(&render(&report));
        assert_eq!(root.name, "testsuites");
        assert_eq!(
            (root.attr("tests"), root.attr("failures")),
            // The optional check's failure is not one of the run's.
            ("5", "1")
        );
        // junit-10.xsd has no such attributes on <testsuites>.
        assert!(
            !root
                .attrs
                .iter()
                .any(|(n, _)| n == "skipped" || n == "timestamp")
        );
        assert_eq!(root.attr("time"), "2.345");
        let suites = root.all("testsuite");
        assert_eq!(
            suites.iter().map(|s| s.attr("name")).collect::<Vec<_>>(),
            ["pull", "push", "main"]
        );
        assert_eq!(suites[2].attr("failures"), "0");
        assert!(
            suites[2].all("properties")[0]
                .all("property")
                .iter()
                .any(|p| p.attr("name") == "optional" && p.attr("value") == "true")
        );
        assert_eq!(suites[0].attr("tests"), "2");
        assert_eq!(suites[0].attr("time"), "3.000");
        assert_eq!(suites[1].attr("skipped"), "1");
        let props = &suites[0].all("properties")[0].all("property");
        assert_eq!(props[0].attr("value"), "127.0.0.1:5000");
        let cases: Vec<&El> = suites.iter().flat_map(|s| s.all("testcase")).collect();
        assert_eq!(cases.len(), report.checks.len());
        for (case, check) in cases.iter().zip(&report.checks) {
            assert_eq!(case.attr("classname"), check.info.workflow.as_str());
            assert_eq!(case.attr("name"), check.info.id);
            assert_eq!(case.attr("time"), "1.500");
            // junit-10.xsd has no <properties> in a <testcase>.
            let kinds: Vec<&str> = case.children.iter().map(|c| c.name.as_str()).collect();
            match check.outcome.status {
                Status::Pass => assert!(kinds.is_empty()),
                Status::Fail if check.info.optional => {
                    assert_eq!(kinds, ["system-out"]);
                    let out = &case.all("system-out")[0].text;
                    assert!(
                        out.starts_with("optional check failed: no Docker-Content-Digest"),
                        "{out}"
                    );
                }
                Status::Fail => {
                    assert_eq!(kinds, ["failure"]);
                    let failure = case.all("failure")[0];
                    // The reason round-trips exactly, markup and all.
                    assert_eq!(
                        failure.attr("message"),
                        check.outcome.reason.replace('\u{1}', "\u{2401}")
                    );
                    assert_eq!(failure.attr("type"), "MUST");
                    assert!(
                        failure
                            .text
                            .contains("GET http://127.0.0.1:5000/v2/ns/manifests/latest?x=<b>")
                    );
                    assert!(failure.text.contains("-> 404"));
                    assert!(failure.text.contains("-> error: connection refused"));
                }
                Status::Warn => {
                    assert_eq!(kinds, ["system-out"]);
                    let out = &case.all("system-out")[0].text;
                    assert!(
                        out.starts_with("warning: no Location </pre><script>"),
                        "{out}"
                    );
                }
                Status::Skip => {
                    assert_eq!(kinds, ["skipped"]);
                    assert_eq!(case.all("skipped")[0].attr("message"), "not offered");
                }
            }
        }
    }

    #[test]
    fn line_breaks_in_attributes_survive() {
        let mut report = sample_report();
        report.checks[1].outcome.reason = "first\nsecond\tthird".into();
        let root = parse(&render(&report));
        let failure = root.all("testsuite")[0].all("testcase")[1].all("failure")[0];
        assert_eq!(failure.attr("message"), "first\nsecond\tthird");
    }

    #[test]
    fn the_parser_rejects_what_it_must() {
        for bad in [
            "<a><b></a></b>",
            "<a>x & y</a>",
            "<a b=\"<\"/>",
            "<a>\u{1}</a>",
            "<a></a><b></b>",
            "<a>&nbsp;</a>",
        ] {
            let doc = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{bad}");
            assert!(
                std::panic::catch_unwind(|| parse(&doc)).is_err(),
                "accepted {bad:?}"
            );
        }
    }
}
