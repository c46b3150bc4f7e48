//! `GET /v2/` and authentication: the challenge an anonymous client gets, and whether the
//! given credentials are accepted (the client follows the Basic or token flow).

use berth_distribution::parse_challenges;
use http::Method;

use super::{Check, CheckResult, check, ensure};
use crate::model::{Level, Verdict, Workflow};
use crate::session::{Ctx, Req};

pub(super) fn checks() -> Vec<Check> {
    vec![
        check!(
            "auth.challenge",
            Auth,
            Must,
            "determining-support",
            "an anonymous GET /v2/ is answered 200, or 401 with a usable WWW-Authenticate challenge",
            challenge
        ),
        check!(
            "auth.credentials",
            Auth,
            Must,
            "determining-support",
            "GET /v2/ with the given credentials (challenge answered, token flow followed) is 200",
            credentials
        ),
    ]
}

async fn challenge(c: &mut Ctx) -> CheckResult {
    let r = c.send(Req::new(Method::GET, "/v2/").anonymous()).await?;
    if r.status() == 200 {
        return Ok(Verdict::Pass);
    }
    r.expect_status(&[401])?;
    let www: Vec<&str> = r
        .raw
        .headers
        .get_all("www-authenticate")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    ensure(!www.is_empty(), || {
        "GET /v2/: 401 without a WWW-Authenticate header".into()
    })?;
    let challenges: Vec<_> = www.iter().flat_map(|h| parse_challenges(h)).collect();
    if let Some(b) = challenges.iter().find(|c| c.is("bearer")) {
        let realm = b.param("realm").unwrap_or("");
        ensure(
            realm.starts_with("https://") || realm.starts_with("http://"),
            || {
                format!(
                    "GET /v2/: Bearer challenge without an absolute realm URL (realm={realm:?})"
                )
            },
        )?;
        return Ok(Verdict::Pass);
    }
    ensure(challenges.iter().any(|c| c.is("basic")), || {
        format!(
            "GET /v2/: no Bearer or Basic challenge in WWW-Authenticate: {}",
            www.join(" | ")
        )
    })?;
    Ok(Verdict::Pass)
}

async fn credentials(c: &mut Ctx) -> CheckResult {
    if !c.has_credentials {
        return Ok(Verdict::NotRun("no credentials given (--username)".into()));
    }
    let r = c.send(Req::new(Method::GET, "/v2/")).await?;
    r.expect_status(&[200])?;
    Ok(Verdict::Pass)
}
