//! Access rules: which user may do which action on which repository.
//!
//! With no `[[auth.access]]` rules every authenticated user may pull, push and delete
//! everywhere. Once any rule is configured, rules *replace* that default: a user gets the
//! union of the actions of every rule naming them (or `"*"`, any authenticated user) whose
//! repository patterns match. `anonymous_pull = true` adds `pull` everywhere for everyone,
//! anonymous clients included. Patterns: `"*"` matches every repository, a trailing `*`
//! matches a prefix (`"team/*"`), anything else matches exactly.

use serde::Deserialize;

use super::AuthError;

/// A distribution-spec action on a repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Pull,
    Push,
    Delete,
}

impl Action {
    /// The scope spelling: `"pull"`, `"push"` or `"delete"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Pull => "pull",
            Action::Push => "push",
            Action::Delete => "delete",
        }
    }

    /// Parse a scope action; `None` for anything else (including `"*"`, handled by callers).
    pub fn parse(s: &str) -> Option<Action> {
        match s {
            "pull" => Some(Action::Pull),
            "push" => Some(Action::Push),
            "delete" => Some(Action::Delete),
            _ => None,
        }
    }

    const ALL: [Action; 3] = [Action::Pull, Action::Push, Action::Delete];

    fn bit(self) -> u8 {
        match self {
            Action::Pull => 1,
            Action::Push => 2,
            Action::Delete => 4,
        }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A small set of [`Action`]s (a bit set; no allocation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct ActionSet(u8);

impl ActionSet {
    pub(crate) const NONE: ActionSet = ActionSet(0);
    pub(crate) const ALL: ActionSet = ActionSet(7);

    pub(crate) fn from_actions(actions: &[Action]) -> ActionSet {
        ActionSet(actions.iter().fold(0, |acc, a| acc | a.bit()))
    }

    pub(crate) fn with(self, a: Action) -> ActionSet {
        ActionSet(self.0 | a.bit())
    }

    pub(crate) fn union(self, other: ActionSet) -> ActionSet {
        ActionSet(self.0 | other.0)
    }

    pub(crate) fn intersect(self, other: ActionSet) -> ActionSet {
        ActionSet(self.0 & other.0)
    }

    pub(crate) fn contains(self, a: Action) -> bool {
        self.0 & a.bit() != 0
    }

    pub(crate) fn contains_all(self, other: ActionSet) -> bool {
        self.0 & other.0 == other.0
    }

    pub(crate) fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The actions in scope order (pull, push, delete).
    pub(crate) fn iter(self) -> impl Iterator<Item = Action> {
        Action::ALL.into_iter().filter(move |a| self.contains(*a))
    }
}

/// One `[[auth.access]]` rule.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessRule {
    /// User names from the htpasswd file; `"*"` means any authenticated user.
    pub users: Vec<String>,
    /// Repository patterns: `"*"`, `"prefix/*"` or an exact name.
    pub repositories: Vec<String>,
    /// Granted actions.
    pub actions: Vec<Action>,
}

/// Compiled access policy.
#[derive(Debug, Clone)]
pub(crate) struct Policy {
    rules: Vec<CompiledRule>,
    anonymous_pull: bool,
}

#[derive(Debug, Clone)]
struct CompiledRule {
    any_user: bool,
    users: Vec<String>,
    repositories: Vec<Pattern>,
    actions: ActionSet,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    Exact(String),
    Prefix(String),
}

impl Pattern {
    fn parse(s: &str) -> Result<Pattern, &'static str> {
        if s.is_empty() {
            return Err("empty repository pattern");
        }
        let (body, prefix) = match s.strip_suffix('*') {
            Some(body) => (body, true),
            None => (s, false),
        };
        if body.contains('*') {
            return Err("`*` is only allowed at the end of a repository pattern");
        }
        Ok(if prefix {
            Pattern::Prefix(body.to_owned())
        } else {
            Pattern::Exact(body.to_owned())
        })
    }

    fn matches(&self, repo: &str) -> bool {
        match self {
            Pattern::Exact(p) => p == repo,
            Pattern::Prefix(p) => repo.starts_with(p.as_str()),
        }
    }

    fn is_everything(&self) -> bool {
        matches!(self, Pattern::Prefix(p) if p.is_empty())
    }
}

impl Policy {
    /// Validate and compile the configured rules.
    pub(crate) fn new(rules: &[AccessRule], anonymous_pull: bool) -> Result<Policy, AuthError> {
        let mut compiled = Vec::with_capacity(rules.len());
        for (i, rule) in rules.iter().enumerate() {
            let index = i + 1;
            let invalid = |reason: String| AuthError::InvalidRule { index, reason };
            if rule.users.is_empty() {
                return Err(invalid("`users` is empty".into()));
            }
            if rule.repositories.is_empty() {
                return Err(invalid("`repositories` is empty".into()));
            }
            if rule.actions.is_empty() {
                return Err(invalid("`actions` is empty".into()));
            }
            if let Some(u) = rule.users.iter().find(|u| u.is_empty() || u.contains(':')) {
                return Err(invalid(format!("invalid user name {u:?}")));
            }
            let repositories = rule
                .repositories
                .iter()
                .map(|r| Pattern::parse(r).map_err(|e| invalid(format!("{e}: {r:?}"))))
                .collect::<Result<Vec<_>, _>>()?;
            compiled.push(CompiledRule {
                any_user: rule.users.iter().any(|u| u == "*"),
                users: rule.users.iter().filter(|u| *u != "*").cloned().collect(),
                repositories,
                actions: ActionSet::from_actions(&rule.actions),
            });
        }
        Ok(Policy {
            rules: compiled,
            anonymous_pull,
        })
    }

    pub(crate) fn anonymous_pull(&self) -> bool {
        self.anonymous_pull
    }

    fn user_rules<'a>(&'a self, user: &'a str) -> impl Iterator<Item = &'a CompiledRule> + 'a {
        self.rules
            .iter()
            .filter(move |r| r.any_user || r.users.iter().any(|u| u == user))
    }

    /// Actions `user` (`None` = anonymous) may perform on repository `repo`.
    pub(crate) fn allowed(&self, user: Option<&str>, repo: &str) -> ActionSet {
        let base = if self.anonymous_pull {
            ActionSet::NONE.with(Action::Pull)
        } else {
            ActionSet::NONE
        };
        let Some(user) = user else {
            return base;
        };
        if self.rules.is_empty() {
            return ActionSet::ALL;
        }
        self.user_rules(user)
            .filter(|r| r.repositories.iter().any(|p| p.matches(repo)))
            .fold(base, |acc, r| acc.union(r.actions))
    }

    /// Whether `user` may list the catalog: any authenticated user without rules; with rules,
    /// only users granted `pull` on `"*"`. Anonymous clients never may.
    pub(crate) fn catalog_allowed(&self, user: Option<&str>) -> bool {
        let Some(user) = user else {
            return false;
        };
        self.rules.is_empty()
            || self.user_rules(user).any(|r| {
                r.actions.contains(Action::Pull)
                    && r.repositories.iter().any(Pattern::is_everything)
            })
    }

    /// Whether `user` may call `GET /v2/` (the API version check).
    pub(crate) fn base_allowed(&self, user: Option<&str>) -> bool {
        user.is_some() || self.anonymous_pull
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(users: &[&str], repos: &[&str], actions: &[Action]) -> AccessRule {
        AccessRule {
            users: users.iter().map(|s| s.to_string()).collect(),
            repositories: repos.iter().map(|s| s.to_string()).collect(),
            actions: actions.to_vec(),
        }
    }

    fn names(set: ActionSet) -> Vec<&'static str> {
        set.iter().map(Action::as_str).collect()
    }

    #[test]
    fn default_policy_grants_authenticated_users_everything() {
        let p = Policy::new(&[], false).unwrap();
        assert_eq!(p.allowed(Some("alice"), "any/repo"), ActionSet::ALL);
        assert_eq!(p.allowed(None, "any/repo"), ActionSet::NONE);
        assert!(p.catalog_allowed(Some("alice")));
        assert!(!p.catalog_allowed(None));
        assert!(p.base_allowed(Some("alice")));
        assert!(!p.base_allowed(None));
    }

    #[test]
    fn anonymous_pull_adds_pull_for_everyone() {
        let p = Policy::new(&[rule(&["ci"], &["team/*"], &[Action::Push])], true).unwrap();
        assert_eq!(names(p.allowed(None, "x")), ["pull"]);
        assert_eq!(names(p.allowed(Some("bob"), "x")), ["pull"]);
        assert_eq!(names(p.allowed(Some("ci"), "team/a")), ["pull", "push"]);
        assert!(p.base_allowed(None));
        assert!(!p.catalog_allowed(None));
    }

    #[test]
    fn rules_matching_table() {
        let p = Policy::new(
            &[
                rule(
                    &["ci"],
                    &["team/*", "exact/name"],
                    &[Action::Pull, Action::Push],
                ),
                rule(
                    &["admin"],
                    &["*"],
                    &[Action::Pull, Action::Push, Action::Delete],
                ),
                rule(&["*"], &["public/*"], &[Action::Pull]),
                rule(&["ops"], &["team*"], &[Action::Delete]),
            ],
            false,
        )
        .unwrap();
        let table: &[(&str, &str, &[&str])] = &[
            ("ci", "team/a", &["pull", "push"]),
            ("ci", "team/a/b", &["pull", "push"]),
            ("ci", "team", &[]),
            ("ci", "teamx/a", &[]),
            ("ci", "exact/name", &["pull", "push"]),
            ("ci", "exact/name2", &[]),
            ("ci", "exact", &[]),
            ("ci", "public/x", &["pull"]),
            ("admin", "anything/at/all", &["pull", "push", "delete"]),
            ("nobody", "team/a", &[]),
            ("nobody", "public/img", &["pull"]),
            ("ops", "team", &["delete"]),
            ("ops", "teamx/a", &["delete"]),
            ("ops", "public/y", &["pull"]),
        ];
        for (user, repo, want) in table {
            assert_eq!(
                names(p.allowed(Some(user), repo)),
                *want,
                "user {user} repo {repo}"
            );
        }
        assert_eq!(p.allowed(None, "public/x"), ActionSet::NONE);
        assert!(p.catalog_allowed(Some("admin")));
        assert!(!p.catalog_allowed(Some("ci")));
        assert!(!p.catalog_allowed(Some("nobody")));
    }

    #[test]
    fn invalid_rules_are_refused_with_their_index() {
        let bad = [
            rule(&[], &["a"], &[Action::Pull]),
            rule(&["a"], &[], &[Action::Pull]),
            rule(&["a"], &["a"], &[]),
            rule(&["a"], &["a/*/b"], &[Action::Pull]),
            rule(&["a"], &[""], &[Action::Pull]),
            rule(&["a:b"], &["x"], &[Action::Pull]),
        ];
        for r in bad {
            let good = rule(&["x"], &["x"], &[Action::Pull]);
            let err = Policy::new(&[good, r.clone()], false).unwrap_err();
            assert!(
                err.to_string()
                    .starts_with("invalid [[auth.access]] rule #2"),
                "{err} for {r:?}"
            );
        }
    }

    #[test]
    fn actions_deserialize_lowercase() {
        #[derive(Deserialize)]
        struct W {
            a: Vec<Action>,
        }
        let w: W = toml::from_str(r#"a = ["pull", "push", "delete"]"#).unwrap();
        assert_eq!(w.a, [Action::Pull, Action::Push, Action::Delete]);
        assert!(toml::from_str::<W>(r#"a = ["Pull"]"#).is_err());
    }
}
