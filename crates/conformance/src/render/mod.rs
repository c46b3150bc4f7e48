//! Renderers of a [`Report`](crate::Report) into the files a person or a CI system reads:
//! [`html`] (one self-contained page) and [`junit`] (JUnit XML). Both are pure functions of
//! the report — no I/O, no clock — so the same report always renders to the same bytes.
//!
//! Every string in a report may come from the registry (URLs, headers, bodies, reasons that
//! quote them): it is untrusted and escaped on output, whatever renderer reads it.

pub mod html;
pub mod junit;

/// Append `s` to `out`, escaped for HTML or XML text and double- or single-quoted attribute
/// values: `& < > " '` become character references, and control characters other than tab,
/// newline and carriage return (not allowed in XML 1.0, invisible in HTML) become their
/// Unicode control pictures (`U+0000` → `␀`, `U+007F` → `␡`), so nothing a registry sends
/// can end an element, open a tag or make the file unparseable.
pub(crate) fn escape_into(out: &mut String, s: &str) {
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' | '\r' => out.push(ch),
            c if (c as u32) < 0x20 => {
                out.push(char::from_u32(0x2400 + c as u32).unwrap_or('\u{FFFD}'))
            }
            '\u{7F}' => out.push('\u{2421}'),
            // Not XML 1.0 characters (and noncharacters in HTML).
            '\u{FFFE}' | '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
}

/// `s` escaped as [`escape_into`] does.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    escape_into(&mut out, s);
    out
}

/// Milliseconds as seconds with three decimals (`1234` → `1.234`).
pub(crate) fn seconds(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

/// A small report with one check of each status over two workflows (and a failed optional
/// check in the `main` group), and registry strings
/// that try to break out of HTML and XML.
#[cfg(test)]
pub(crate) fn sample_report() -> crate::Report {
    use crate::model::*;
    const HOSTILE: &str = "</pre><script>alert(1)</script>\"' & ]]> --> \u{1}";
    let exchange = |status: Option<u16>| Exchange {
        method: "GET".into(),
        url: format!("http://127.0.0.1:5000/v2/ns/manifests/latest?x=<b>&y={HOSTILE}"),
        request_headers: vec![Header {
            name: "Authorization".into(),
            value: "Basic <redacted>".into(),
        }],
        request_body: None,
        status,
        response_headers: vec![Header {
            name: "X-Evil".into(),
            value: HOSTILE.into(),
        }],
        response_body: Some(BodyView {
            size: 4096,
            truncated: true,
            encoding: "utf-8".into(),
            content: HOSTILE.into(),
        }),
        error: status
            .is_none()
            .then(|| format!("connection refused {HOSTILE}")),
        duration_ms: 3,
    };
    let result =
        |workflow: Workflow, name: &str, level: Level, status: Status, reason: &str| CheckResult {
            info: CheckInfo {
                id: format!("{workflow}.{name}"),
                title: format!("{name} <title>"),
                workflow,
                level,
                section: "pulling-manifests".into(),
                spec_url: if workflow.is_optional() {
                    format!("{MAIN_SPEC_URL}#pulling-manifests")
                } else {
                    format!("{SPEC_URL}#pulling-manifests")
                },
                optional: workflow.is_optional(),
            },
            outcome: Outcome {
                status,
                reason: reason.into(),
            },
            duration_ms: 1500,
            exchanges: vec![exchange(Some(404)), exchange(None)],
            evidence: None,
        };
    let checks = vec![
        result(Workflow::Pull, "ok", Level::Must, Status::Pass, ""),
        result(
            Workflow::Pull,
            "broken",
            Level::Must,
            Status::Fail,
            &format!("expected 404, got 403 {HOSTILE}"),
        ),
        result(
            Workflow::Push,
            "header",
            Level::Should,
            Status::Warn,
            &format!("no Location {HOSTILE}\nsecond line"),
        ),
        result(
            Workflow::Push,
            "optional",
            Level::May,
            Status::Skip,
            "not offered",
        ),
        result(
            Workflow::Main,
            "beyond",
            Level::Must,
            Status::Fail,
            "no Docker-Content-Digest",
        ),
    ];
    let counts = |p, f, w, s| Counts {
        pass: p,
        fail: f,
        warn: w,
        skip: s,
    };
    Report {
        format: REPORT_FORMAT,
        subject: Subject::Registry,
        implementation: None,
        tool: "berth-conformance 0.1.0".into(),
        spec_version: SPEC_VERSION.into(),
        registry: "127.0.0.1:5000".into(),
        namespace: "conformance/test".into(),
        existing: None,
        started_at: "2024-02-29T23:59:59Z".into(),
        duration_ms: 2345,
        workflows: vec![Workflow::Pull, Workflow::Push, Workflow::Main],
        conformant: false,
        totals: counts(1, 2, 1, 1),
        summary: vec![
            WorkflowSummary {
                workflow: Workflow::Pull,
                optional: false,
                counts: counts(1, 1, 0, 0),
            },
            WorkflowSummary {
                workflow: Workflow::Push,
                optional: false,
                counts: counts(0, 0, 1, 1),
            },
            WorkflowSummary {
                workflow: Workflow::Main,
                optional: true,
                counts: counts(0, 1, 0, 0),
            },
        ],
        checks,
        setup: vec![exchange(Some(201))],
        cleanup: vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_quotes_and_controls() {
        assert_eq!(
            escape("<script>alert('x\")</script> & \u{0}\u{1b}\u{7f}\u{fffe}\t\n"),
            "&lt;script&gt;alert(&#39;x&quot;)&lt;/script&gt; &amp; \u{2400}\u{241b}\u{2421}\u{fffd}\t\n"
        );
        assert_eq!(escape("pull.manifest-get ü"), "pull.manifest-get ü");
    }

    #[test]
    fn seconds_have_three_decimals() {
        assert_eq!(seconds(0), "0.000");
        assert_eq!(seconds(1234), "1.234");
        assert_eq!(seconds(61_005), "61.005");
    }
}
