//! The HTML and JUnit reports as their readers see them: the HTML page in a real browser
//! (Debian's `chromium`, headless: `--dump-dom` after the page's script ran, console
//! messages read from its log, screenshots kept under `target/tmp/conformance-report/`),
//! the JUnit XML through a real XML parser (Python's `xml.etree`).
//!
//! Every report comes from `berth conformance check --json --html --junit` against
//! `berth registry serve` on 127.0.0.1, so the page is checked against the JSON written by
//! the same run.

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use berth_conformance::{Report, Status, Workflow};
use berth_test_support::{
    DockerRegistry, Registry, RegistryOptions, requires_tool, wait_until, write_file,
};

/// How long one Chromium run may take before it is killed.
const CHROMIUM_TIMEOUT: Duration = Duration::from_secs(90);

/// Where the artifacts of these tests are kept (under `target/`, kept after the run).
fn artifacts() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("conformance-report");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The three reports of one `berth conformance check --include-main` run against a fresh
/// berth registry, written into `dir` as report.json, report.html and report.xml.
fn reports_from_the_command(dir: &Path) -> Report {
    let reg = Registry::start(RegistryOptions::new());
    reports_of(&reg.host(), dir, true, &["--include-main"])
}

/// The three reports of `berth conformance check [extra…]` against `host`, which must (or
/// must not) conform.
fn reports_of(host: &str, dir: &Path, conformant: bool, extra: &[&str]) -> Report {
    let (json, html, junit) = (
        dir.join("report.json"),
        dir.join("report.html"),
        dir.join("report.xml"),
    );
    let out = berth_test_support::run_with_timeout(
        Command::new(berth_test_support::berth_bin())
            .args([
                "conformance",
                "check",
                &format!("{host}/conformance/report"),
            ])
            .arg("--json")
            .arg(&json)
            .arg("--html")
            .arg(&html)
            .arg("--junit")
            .arg(&junit)
            .args(extra),
        Duration::from_secs(120),
    );
    assert_eq!(
        out.status.success(),
        conformant,
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(html.is_file() && junit.is_file());
    serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap()
}

/// A headless Chromium run, in its own process group with its own profile directory; the
/// whole group is killed (SIGKILL, by its id) when the guard drops, panics included.
struct Chromium {
    child: Child,
    _profile: tempfile::TempDir,
    stdout: std::fs::File,
    stderr: std::fs::File,
}

struct ChromiumOutput {
    success: bool,
    dom: String,
    log: String,
}

impl Chromium {
    fn run(args: &[String]) -> ChromiumOutput {
        let profile = tempfile::tempdir().unwrap();
        let stdout = tempfile::tempfile().unwrap();
        let stderr = tempfile::tempfile().unwrap();
        let child = Command::new("chromium")
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                // CI containers often have a 64 MiB /dev/shm.
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--disable-extensions",
                "--disable-background-networking",
                "--enable-logging=stderr",
                "--v=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(args)
            .stdin(Stdio::null())
            .stdout(stdout.try_clone().unwrap())
            .stderr(stderr.try_clone().unwrap())
            .process_group(0)
            .spawn()
            .expect("failed to start chromium");
        let mut c = Chromium {
            child,
            _profile: profile,
            stdout,
            stderr,
        };
        let mut status = None;
        wait_until(CHROMIUM_TIMEOUT, || {
            status = c.child.try_wait().ok().flatten();
            status.is_some()
        });
        let log = read_all(&mut c.stderr);
        let Some(status) = status else {
            panic!("chromium {args:?} did not finish within {CHROMIUM_TIMEOUT:?}; log:\n{log}");
        };
        ChromiumOutput {
            success: status.success(),
            dom: read_all(&mut c.stdout),
            log,
        }
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        // The browser's helpers (renderer, zygote, GPU process) are in its process group.
        if let Some(pgid) = rustix::process::Pid::from_raw(self.child.id() as i32) {
            let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_all(f: &mut std::fs::File) -> String {
    String::from_utf8_lossy(&berth_test_support::read_output_file(f)).into_owned()
}

/// The page's DOM after its script ran (`--dump-dom` dumps after the load event).
fn dump_dom(url: &str) -> ChromiumOutput {
    let out = Chromium::run(&["--dump-dom".to_owned(), url.to_owned()]);
    assert!(
        out.success,
        "chromium --dump-dom {url} failed:\n{}",
        out.log
    );
    assert!(out.dom.contains("</html>"), "no DOM dumped:\n{}", out.log);
    out
}

/// The console messages in a Chromium log (`…:CONSOLE:12] "message", source: …`): every
/// `console.*` call, uncaught exception and CSP violation lands there.
fn console_messages(log: &str) -> Vec<&str> {
    log.lines().filter(|l| l.contains(":CONSOLE")).collect()
}

fn file_url(path: &Path, fragment: &str) -> String {
    format!("file://{}{fragment}", path.display())
}

/// The start tags named `name` in a serialized DOM, as attribute maps (Chromium serializes
/// attributes double-quoted, booleans as `name=""`).
fn tags(dom: &str, name: &str) -> Vec<BTreeMap<String, String>> {
    let open = format!("<{name} ");
    let mut found = Vec::new();
    let mut rest = dom;
    while let Some(i) = rest.find(&open) {
        let tag = &rest[i + open.len()..];
        let end = tag.find('>').expect("unterminated tag");
        found.push(attributes(&tag[..end]));
        rest = &tag[end..];
    }
    found
}

fn attributes(mut s: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    loop {
        s = s.trim_start();
        if s.is_empty() || s == "/" {
            return map;
        }
        let name_end = s.find(['=', ' ']).unwrap_or(s.len());
        let name = s[..name_end].to_owned();
        s = &s[name_end..];
        if let Some(v) = s.strip_prefix("=\"") {
            let end = v.find('"').expect("unterminated attribute value");
            map.insert(name, v[..end].to_owned());
            s = &v[end + 1..];
        } else {
            map.insert(name, String::new());
        }
    }
}

/// The text of the element that starts at the tag with `id="{id}"`, up to the end of the
/// first `</{name}>` after it (enough for elements that do not nest in themselves).
fn element<'a>(dom: &'a str, name: &str, id: &str) -> &'a str {
    let at = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no element with id {id}"));
    let start = dom[..at].rfind('<').unwrap();
    let close = format!("</{name}>");
    let end = dom[at..].find(&close).unwrap() + at + close.len();
    &dom[start..end]
}

/// The number in the summary table's cell for `workflow` and `status` (`pass`, …, `total`).
fn summary_cell(dom: &str, workflow: &str, status: &str) -> u32 {
    let row_at = dom
        .find(&format!("<tr data-workflow=\"{workflow}\">"))
        .unwrap_or_else(|| panic!("no summary row for {workflow}"));
    let row = &dom[row_at..row_at + dom[row_at..].find("</tr>").unwrap()];
    let cell = format!("<td data-status=\"{status}\"");
    let at = row
        .find(&cell)
        .unwrap_or_else(|| panic!("no {status} cell in {row}"));
    let at = at + row[at..].find('>').unwrap() + 1;
    let text = &row[at..at + row[at..].find('<').unwrap()];
    text.parse()
        .unwrap_or_else(|_| panic!("{workflow} {status} cell holds {text:?}"))
}

/// Take a screenshot of `url` into `png` (replaced) with a window of `size` ("W,H"); the
/// page must load without a console message.
fn screenshot(png: &Path, size: &str, url: &str) {
    let _ = std::fs::remove_file(png);
    let shot = Chromium::run(&[
        format!("--screenshot={}", png.display()),
        format!("--window-size={size}"),
        "--hide-scrollbars".to_owned(),
        url.to_owned(),
    ]);
    assert!(shot.success, "{}", shot.log);
    assert_eq!(
        console_messages(&shot.log),
        Vec::<&str>::new(),
        "{}",
        shot.log
    );
}

#[test]
fn chromium_console_capture_sees_a_deliberate_error() {
    requires_tool!("chromium");
    // Proves that `console_messages` would see an error on the report page: without this, a
    // page with errors and a log in another format would look clean.
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("error.html");
    write_file(
        &page,
        b"<!DOCTYPE html><html><body><p id=\"p\">x</p><script>console.error('deliberate error 7f3a');document.getElementById('p').setAttribute('data-ran','yes');</script></body></html>",
    );
    let out = dump_dom(&file_url(&page, ""));
    assert!(out.dom.contains("data-ran=\"yes\""), "{}", out.dom);
    let messages = console_messages(&out.log);
    assert_eq!(messages.len(), 1, "{}", out.log);
    assert!(messages[0].contains("deliberate error 7f3a"), "{}", out.log);
}

#[test]
fn html_report_in_headless_chromium() {
    requires_tool!("chromium");
    let started = Instant::now();
    let dir = artifacts();
    let report = reports_from_the_command(&dir);
    let html = dir.join("report.html");
    assert!(report.totals.total() > 50);

    // Loads without a console message, and its script ran (it marks the body).
    let page = dump_dom(&file_url(&html, ""));
    assert_eq!(
        console_messages(&page.log),
        Vec::<&str>::new(),
        "{}",
        page.log
    );
    let body = &tags(&page.dom, "body")[0];
    assert_eq!(body.get("data-filter").map(String::as_str), Some("all"));

    // The summary numbers are the JSON's.
    for w in &report.summary {
        let name = w.workflow.as_str();
        for (status, n) in [
            ("pass", w.counts.pass),
            ("fail", w.counts.fail),
            ("warn", w.counts.warn),
            ("skip", w.counts.skip),
            ("total", w.counts.total()),
        ] {
            assert_eq!(summary_cell(&page.dom, name, status), n, "{name} {status}");
        }
    }
    assert_eq!(
        summary_cell(&page.dom, "all", "total"),
        report.totals.total()
    );
    assert_eq!(summary_cell(&page.dom, "all", "skip"), report.totals.skip);
    assert_eq!(summary_cell(&page.dom, "all", "pass"), report.totals.pass);
    assert_eq!(report.summary.len(), Workflow::ALL.len() + 1);

    // The optional main group is its own section, marked as beyond v1.1 in its heading, its
    // summary row and each of its checks, and the verdict says it is not part of it.
    let main = tags(&page.dom, "section")
        .into_iter()
        .find(|t| t.get("id").map(String::as_str) == Some("wf-main"))
        .expect("no section for the main group");
    assert_eq!(main.get("data-optional").map(String::as_str), Some("true"));
    assert!(element(&page.dom, "section", "wf-main").contains("optional · beyond v1.1.1"));
    let main_row_at = page.dom.find("<tr data-workflow=\"main\">").unwrap();
    assert!(
        page.dom[main_row_at..]
            .split("</tr>")
            .next()
            .unwrap()
            .contains("optional · beyond")
    );
    let optional_verdict = element(&page.dom, "p", "optional-verdict");
    assert!(
        optional_verdict.contains("not part of the verdict"),
        "{optional_verdict}"
    );
    for c in report.checks.iter().filter(|c| c.info.optional) {
        let row = element(&page.dom, "details", &format!("check-{}", c.info.id));
        assert!(
            row.contains("<span class=\"beyond\">optional</span>"),
            "{row}"
        );
        assert!(
            row.contains("distribution-spec/blob/main/spec.md#"),
            "{row}"
        );
    }

    // Every check is a closed row with the JSON's status; nothing is hidden.
    let rows = tags(&page.dom, "details")
        .into_iter()
        .filter(|t| t.get("class").map(String::as_str) == Some("check"))
        .collect::<Vec<_>>();
    assert_eq!(rows.len(), report.checks.len());
    for (row, check) in rows.iter().zip(&report.checks) {
        assert_eq!(row["id"], format!("check-{}", check.info.id));
        assert_eq!(row["data-status"], check.outcome.status.to_string());
        assert!(
            !row.contains_key("hidden") && !row.contains_key("open"),
            "{row:?}"
        );
    }

    // `#check-<id>` opens that check, and its request shows inside the open <details>.
    let id = "pull.manifest-get-tag";
    let manifest_get = report.checks.iter().find(|c| c.info.id == id).unwrap();
    let opened = dump_dom(&file_url(&html, &format!("#check-{id}")));
    assert_eq!(
        console_messages(&opened.log),
        Vec::<&str>::new(),
        "{}",
        opened.log
    );
    let open_rows: Vec<_> = tags(&opened.dom, "details")
        .into_iter()
        .filter(|t| t.contains_key("open"))
        .map(|t| t["id"].clone())
        .collect();
    assert_eq!(open_rows, [format!("check-{id}")]);
    let row = element(&opened.dom, "details", &format!("check-{id}"));
    let request = &manifest_get.exchanges[0];
    assert!(
        row.contains(&format!("<span class=\"method\">{}</span>", request.method)),
        "{row}"
    );
    assert!(row.contains(&request.url.replace('&', "&amp;")), "{row}");
    assert!(row.contains("<h4>Request</h4>") && row.contains("<h4>Response</h4>"));

    // `#filter=skip` hides every check but the skipped ones, `#filter=fail` every check (a
    // berth registry fails none) and says so.
    let skipped = dump_dom(&file_url(&html, "#filter=skip"));
    let skip_ids: Vec<&str> = report
        .with_status(Status::Skip)
        .map(|c| c.info.id.as_str())
        .collect();
    assert!(!skip_ids.is_empty());
    for row in tags(&skipped.dom, "details")
        .iter()
        .filter(|t| t.get("class").map(String::as_str) == Some("check"))
    {
        let is_skip = row["data-status"] == "skip";
        assert_eq!(row.contains_key("hidden"), !is_skip, "{row:?}");
    }
    let failed = dump_dom(&file_url(&html, "#filter=fail"));
    assert_eq!(
        console_messages(&failed.log),
        Vec::<&str>::new(),
        "{}",
        failed.log
    );
    let checks = tags(&failed.dom, "details");
    assert!(
        checks
            .iter()
            .filter(|t| t.get("class").map(String::as_str) == Some("check"))
            .all(|t| t.contains_key("hidden"))
    );
    let none = tags(&failed.dom, "p")
        .into_iter()
        .find(|t| t.get("id").map(String::as_str) == Some("none"))
        .unwrap();
    assert!(
        !none.contains_key("hidden"),
        "the empty-filter note is hidden"
    );
    let current: Vec<_> = tags(&failed.dom, "a")
        .into_iter()
        .filter(|t| t.contains_key("aria-current"))
        .map(|t| t["data-filter"].clone())
        .collect();
    assert_eq!(current, ["fail"]);

    // Screenshots of the page's top, wide and narrow (a phone), kept as artifacts. (With a
    // `#check-` fragment the page scrolls, and headless screenshots of a scrolled page come
    // out blank above the fold.)
    for (name, size) in [
        ("report.png", "1280,1800"),
        ("report-narrow.png", "390,1800"),
    ] {
        let png = dir.join(name);
        screenshot(&png, size, &file_url(&html, ""));
        let bytes = std::fs::read(&png).unwrap();
        assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.len() > 10_000);
        eprintln!("screenshot: {}", png.display());
    }
    // A full-page screenshot with one check expanded: the window is as tall as the page (so
    // nothing scrolls and nothing is cut), measured by Chromium itself.
    let fragment = format!("#check-{id}");
    let height = document_height(&file_url(&html, &fragment), &dir);
    assert!(
        (2_000..16_384).contains(&height),
        "the page is {height} px tall: not a whole report, or too tall for one screenshot"
    );
    let png = dir.join("report-full.png");
    screenshot(&png, &format!("1280,{height}"), &file_url(&html, &fragment));
    assert_eq!(png_size(&png), (1280, height));
    eprintln!("full-page screenshot ({id} expanded): {}", png.display());
    eprintln!(
        "reports: {} (.json, .xml); chromium test took {:.1}s",
        html.display(),
        started.elapsed().as_secs_f64()
    );
}

/// The height in CSS pixels of the document at `url` laid out 1280 pixels wide, as Chromium
/// lays it out (after its script ran): a page of our own, written into `dir`, loads it in
/// an iframe and writes its `scrollHeight` into its own DOM (reading a `file:` frame needs
/// `--allow-file-access-from-files`).
fn document_height(url: &str, dir: &Path) -> u32 {
    let page = dir.join("measure.html");
    let html = format!(
        r#"<!DOCTYPE html>
<html><body style="margin:0">
<iframe id="report" src="{url}" style="width:1280px;height:600px;border:0"></iframe>
<script>
window.addEventListener("load", function () {{
  var d = document.getElementById("report").contentDocument.documentElement;
  document.body.setAttribute("data-report-height", String(d.scrollHeight));
}});
</script>
</body></html>
"#
    );
    write_file(&page, html.as_bytes());
    let out = Chromium::run(&[
        "--allow-file-access-from-files".to_owned(),
        "--dump-dom".to_owned(),
        file_url(&page, ""),
    ]);
    assert!(out.success, "{}", out.log);
    let body = tags(&out.dom, "body")
        .into_iter()
        .next()
        .expect("no <body> dumped");
    let _ = std::fs::remove_file(&page);
    body.get("data-report-height")
        .unwrap_or_else(|| panic!("the report's height was not measured:\n{}", out.log))
        .parse()
        .unwrap()
}

/// Width and height of a PNG (its IHDR chunk, the first one).
fn png_size(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap();
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n") && &bytes[12..16] == b"IHDR");
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    (be(&bytes[16..20]), be(&bytes[20..24]))
}

/// The `hidden` state of every check row in a dumped DOM, by check id.
fn hidden_rows(dom: &str) -> BTreeMap<String, bool> {
    tags(dom, "details")
        .into_iter()
        .filter(|t| t.get("class").map(String::as_str) == Some("check"))
        .map(|t| {
            let id = t["id"].strip_prefix("check-").unwrap().to_owned();
            (id, t.contains_key("hidden"))
        })
        .collect()
}

#[test]
fn failing_report_filters_in_chromium() {
    requires_tool!("chromium", "docker-registry");
    // docker-registry (distribution 2.8) fails and warns on known checks: the filters must
    // show exactly those, as the JSON lists them.
    let peer = DockerRegistry::start(None);
    let dir = artifacts().join("docker-registry");
    std::fs::create_dir_all(&dir).unwrap();
    let report = reports_of(&peer.host(), &dir, false, &[]);
    let html = dir.join("report.html");
    let page = dump_dom(&file_url(&html, ""));
    assert_eq!(
        console_messages(&page.log),
        Vec::<&str>::new(),
        "{}",
        page.log
    );
    assert!(page.dom.contains("data-conformant=\"false\""));
    assert_eq!(summary_cell(&page.dom, "all", "fail"), report.totals.fail);
    assert_eq!(summary_cell(&page.dom, "all", "warn"), report.totals.warn);
    for status in [Status::Fail, Status::Warn] {
        assert!(report.with_status(status).next().is_some());
        let dom = dump_dom(&file_url(&html, &format!("#filter={status}"))).dom;
        let shown: Vec<String> = hidden_rows(&dom)
            .into_iter()
            .filter(|(_, hidden)| !hidden)
            .map(|(id, _)| id)
            .collect();
        let mut expected: Vec<String> = report
            .with_status(status)
            .map(|c| c.info.id.clone())
            .collect();
        expected.sort();
        assert_eq!(shown, expected, "#filter={status}");
    }
    // A check hidden by the filter in the URL is shown (and opened) when asked for.
    let pass_id = &report.with_status(Status::Pass).next().unwrap().info.id;
    let dom = dump_dom(&file_url(&html, &format!("#check-{pass_id}"))).dom;
    assert!(hidden_rows(&dom).values().all(|hidden| !hidden));
    let png = dir.join("report.png");
    screenshot(&png, "1280,1400", &file_url(&html, "#filter=fail"));
    assert!(png.is_file());
    eprintln!("screenshot: {}", png.display());
}

#[test]
fn registry_markup_in_a_report_renders_as_text_in_chromium() {
    requires_tool!("chromium");
    let reg = Registry::start(RegistryOptions::new());
    let mut report = crate::check(&reg.host(), None, &[Workflow::Pull]);
    // What a hostile registry could put into a report: markup in a body, a header value, a
    // reason and a URL.
    let hostile = "</pre><script>console.error('injected script ran')</script><img src=x onerror=\"console.error('injected img ran')\">";
    let check = &mut report.checks[0];
    check.outcome.reason = hostile.to_owned();
    let e = &mut check.exchanges[0];
    e.url = format!("http://{}/v2/?q={hostile}", reg.host());
    e.response_headers.push(berth_conformance::Header {
        name: "X-Evil".into(),
        value: hostile.into(),
    });
    e.response_body = Some(berth_conformance::BodyView {
        size: hostile.len() as u64,
        truncated: false,
        encoding: "utf-8".into(),
        content: hostile.into(),
    });
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("hostile.html");
    write_file(
        &page,
        berth_conformance::render::html::render(&report).as_bytes(),
    );
    let out = dump_dom(&file_url(
        &page,
        &format!("#check-{}", report.checks[0].info.id),
    ));
    assert_eq!(
        console_messages(&out.log),
        Vec::<&str>::new(),
        "{}",
        out.log
    );
    assert!(tags(&out.dom, "img").is_empty(), "an <img> was injected");
    assert_eq!(
        out.dom.matches("<script").count(),
        1,
        "a script was injected"
    );
    // Shown as text, four times (reason, URL, header, body).
    let shown = "&lt;script&gt;console.error('injected script ran')&lt;/script&gt;";
    assert_eq!(out.dom.matches(shown).count(), 4, "{}", out.dom);
}

#[test]
fn junit_report_parses_and_matches_the_json() {
    requires_tool!("python3");
    let dir = tempfile::tempdir().unwrap();
    let report = reports_from_the_command(dir.path());
    // Python's XML parser (expat) is strict: it rejects anything not well-formed. It prints
    // one line per testcase: suite, classname, name, outcome element, time.
    let script = r#"
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
assert root.tag == "testsuites", root.tag
print("totals", root.get("tests"), root.get("failures"), root.get("errors"))
for suite in root.findall("testsuite"):
    print("suite", suite.get("name"), suite.get("tests"), suite.get("failures"), suite.get("skipped"), suite.get("errors"), float(suite.get("time")) >= 0)
    assert suite.find("properties/property[@name='registry']") is not None
    for case in suite.findall("testcase"):
        kinds = [c.tag for c in case]
        out = case.find("system-out")
        first = out.text.split()[0] if out is not None else "-"
        float(case.get("time"))
        print("case", suite.get("name"), case.get("classname"), case.get("name"), ",".join(kinds) or "-", first)
"#;
    let out = berth_test_support::run_with_timeout(
        Command::new("python3")
            .arg("-c")
            .arg(script)
            .arg(dir.path().join("report.xml")),
        Duration::from_secs(30),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let t = &report.totals;
    // Optional (main group) failures fail no CI build: they are not counted as failures.
    let mut expected = vec![format!("totals {} {} 0", t.total(), report.required().fail)];
    assert!(report.summary.iter().any(|w| w.optional));
    for w in &report.summary {
        let c = &w.counts;
        expected.push(format!(
            "suite {} {} {} {} 0 True",
            w.workflow,
            c.total(),
            if w.optional { 0 } else { c.fail },
            c.skip
        ));
        for r in report
            .checks
            .iter()
            .filter(|r| r.info.workflow == w.workflow)
        {
            let kind = match r.outcome.status {
                Status::Pass => "- -",
                Status::Fail if r.info.optional => "system-out optional",
                Status::Fail => "failure -",
                Status::Warn => "system-out warning:",
                Status::Skip => "skipped -",
            };
            expected.push(format!("case {w} {w} {} {kind}", r.info.id, w = w.workflow));
        }
    }
    assert_eq!(stdout.lines().collect::<Vec<_>>(), expected);
}

/// The JUnit schema CI tools read (Jenkins' xunit plugin `junit-10.xsd`), where
/// `scripts/test` puts it: `<target>/test-tools/junit-10.xsd`.
fn junit_schema() -> Option<PathBuf> {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).parent()?;
    let schema = target.join("test-tools").join("junit-10.xsd");
    schema.is_file().then_some(schema)
}

/// `xmllint --schema` of `doc`: whether it is valid, and what xmllint said.
fn xmllint(schema: &Path, doc: &Path) -> (bool, String) {
    let out = berth_test_support::run_with_timeout(
        Command::new("xmllint")
            .arg("--noout")
            .arg("--schema")
            .arg(schema)
            .arg(doc),
        Duration::from_secs(30),
    );
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn junit_report_is_valid_against_the_junit_schema() {
    requires_tool!("xmllint");
    let Some(schema) = junit_schema() else {
        berth_test_support::skip_or_fail(
            "the JUnit schema <target>/test-tools/junit-10.xsd is missing (scripts/test fetches it)",
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // The command's report (berth's registry, the main group included).
    let mut report = reports_from_the_command(dir.path());
    let (valid, why) = xmllint(&schema, &dir.path().join("report.xml"));
    assert!(valid, "{why}");
    // Every kind of testcase, with registry text that tries to break the XML.
    let hostile = "</failure><properties/>]]> & \u{1} \"'";
    let required = [Status::Fail, Status::Warn, Status::Skip];
    for (c, status) in report
        .checks
        .iter_mut()
        .filter(|c| !c.info.optional)
        .zip(required)
    {
        c.outcome.status = status;
        c.outcome.reason = format!("{status} {hostile}");
    }
    let optional = report.checks.iter_mut().find(|c| c.info.optional).unwrap();
    optional.outcome.status = Status::Fail;
    optional.outcome.reason = hostile.to_owned();
    let all = dir.path().join("all-kinds.xml");
    let xml = berth_conformance::render::junit::render(&report);
    for element in [
        "<failure ",
        "<skipped ",
        "<system-out>warning: ",
        "<system-out>optional check failed: ",
    ] {
        assert!(xml.contains(element), "{element}");
    }
    write_file(&all, xml.as_bytes());
    let (valid, why) = xmllint(&schema, &all);
    assert!(valid, "{why}");
    // And the validation can fail: a <properties> in a testcase is not in the schema.
    let invalid = dir.path().join("invalid.xml");
    write_file(
        &invalid,
        xml.replacen("</testcase>", "<properties/></testcase>", 1)
            .as_bytes(),
    );
    let (valid, why) = xmllint(&schema, &invalid);
    assert!(!valid, "xmllint accepted a <properties> in a <testcase>");
    assert!(why.contains("properties"), "{why}");
}

/// The reports of `berth conformance verify` with a verifier that accepts everything: every
/// MUST-refuse case fails, the rest pass, each with its evidence.
fn signing_reports(dir: &Path) -> Report {
    let (report, ok, out) = crate::signing::verify_command("true {image}", dir);
    assert!(!ok, "{out}");
    assert!(report.required().fail > 10);
    report
}

#[test]
fn signing_report_in_headless_chromium() {
    requires_tool!("chromium");
    let dir = artifacts().join("signing");
    std::fs::create_dir_all(&dir).unwrap();
    let report = signing_reports(&dir);
    let html = dir.join("report.html");
    let page = dump_dom(&file_url(&html, ""));
    assert_eq!(
        console_messages(&page.log),
        Vec::<&str>::new(),
        "{}",
        page.log
    );
    // The plain verdict, as the JSON says it.
    let verdict = element(&page.dom, "p", "verdict");
    let n = report.required().fail;
    assert!(
        verdict.contains(&format!("does not conform: {n} MUST violations")),
        "{verdict}"
    );
    assert!(verdict.contains("data-conformant=\"false\""), "{verdict}");
    assert!(
        page.dom
            .contains("Notary Project conformance of the verifier")
    );
    // The summary rows are the JSON's; every check is a row with its evidence.
    for w in &report.summary {
        let name = w.workflow.as_str();
        assert_eq!(
            summary_cell(&page.dom, name, "fail"),
            w.counts.fail,
            "{name}"
        );
        assert_eq!(
            summary_cell(&page.dom, name, "pass"),
            w.counts.pass,
            "{name}"
        );
    }
    let rows = tags(&page.dom, "details")
        .into_iter()
        .filter(|t| t.get("class").map(String::as_str) == Some("check"))
        .count();
    assert_eq!(rows, report.checks.len());
    let failed = report.with_status(Status::Fail).next().unwrap();
    let row = element(&page.dom, "details", &format!("check-{}", failed.info.id));
    for part in [
        "What the implementation did",
        "accepted (exit status 0)",
        "What the specification requires",
        "MUST refuse",
        "Input: trust policy",
        "Input: image",
        "https://github.com/notaryproject/specifications/blob/v1.1.0/specs/",
    ] {
        assert!(row.contains(part), "{part} not in {row}");
    }
    // An envelope's protected header is shown decoded, certificates summarised.
    let crit = element(
        &page.dom,
        "details",
        "check-verifier.unknown-critical-header",
    );
    assert!(
        crit.contains("io.cncf.conformance.unknownCritical"),
        "{crit}"
    );
    assert!(crit.contains("extendedKeyUsage: codeSigning"), "{crit}");
    // The filter works on this report too.
    let filtered = dump_dom(&file_url(&html, "#filter=fail"));
    for t in tags(&filtered.dom, "details")
        .into_iter()
        .filter(|t| t.get("class").map(String::as_str) == Some("check"))
    {
        let hidden = t.contains_key("hidden");
        assert_eq!(
            hidden,
            t.get("data-status").map(String::as_str) != Some("fail"),
            "{t:?}"
        );
    }
    screenshot(
        &dir.join("report-top.png"),
        "1280,900",
        &file_url(&html, ""),
    );
}

#[test]
fn signing_junit_report_is_valid_against_the_junit_schema() {
    requires_tool!("xmllint");
    let Some(schema) = junit_schema() else {
        berth_test_support::skip_or_fail(
            "the JUnit schema <target>/test-tools/junit-10.xsd is missing (scripts/test fetches it)",
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let report = signing_reports(dir.path());
    let xml = std::fs::read_to_string(dir.path().join("report.xml")).unwrap();
    let (valid, why) = xmllint(&schema, &dir.path().join("report.xml"));
    assert!(valid, "{why}");
    // A failure carries what the verifier did and what the specification requires.
    assert_eq!(
        xml.matches("<failure ").count() as u32,
        report.required().fail
    );
    assert!(xml.contains("implementation did: accepted (exit status 0)"));
    assert!(xml.contains("specification requires: MUST refuse"));
    assert!(xml.contains("<testsuite name=\"verifier\""));
    assert!(xml.contains("<testsuite name=\"vectors\""));
}
