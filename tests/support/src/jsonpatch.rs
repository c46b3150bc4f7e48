//! JSON Patch (RFC 6902) over JSON Pointers (RFC 6901), applied as the Kubernetes API server
//! applies an admission webhook's `patch` (it uses the evanphx/json-patch library): every
//! operation in order, on a copy, and the whole patch refused when one operation fails.
//!
//! What the RFC says and this does:
//! - `add`: to an object member (added or replaced), to an array index `0..=len` (inserted)
//!   or `-` (appended), or to the root (the whole document replaced); the parent must exist
//!   (RFC 6902 4.1).
//! - `remove`, `replace`: the target must exist (4.2, 4.3).
//! - `move`: `from` must exist and must not be a proper prefix of `path` (4.4); remove, then
//!   add. `copy`: the value at `from` added at `path` (4.5).
//! - `test`: the target's value equals `value`: same type, strings and numbers by value,
//!   arrays element by element, objects member by member whatever their order (4.6).
//! - members other than `op`, `path`, `value` and `from` are ignored (4); a missing `value`
//!   (present as `null` counts) or `from` is an error.
//! - array indexes are `0` or digits without a leading zero (RFC 6901 4); `~1` decodes to
//!   `/` and `~0` to `~`, in that order.

use serde_json::Value;

/// Why a patch could not be applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchError {
    /// The index of the failing operation in the patch.
    pub index: usize,
    pub message: String,
}

impl std::fmt::Display for PatchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "operation {}: {}", self.index, self.message)
    }
}

/// `doc` with `patch` (a JSON array of operations) applied; `doc` is untouched on error.
pub fn apply_patch(doc: &Value, patch: &Value) -> Result<Value, PatchError> {
    let ops = patch.as_array().ok_or(PatchError {
        index: 0,
        message: "a JSON patch is an array of operations".to_string(),
    })?;
    let mut out = doc.clone();
    for (index, op) in ops.iter().enumerate() {
        apply_op(&mut out, op).map_err(|message| PatchError { index, message })?;
    }
    Ok(out)
}

fn apply_op(doc: &mut Value, op: &Value) -> Result<(), String> {
    let obj = op
        .as_object()
        .ok_or_else(|| format!("an operation is an object, not {op}"))?;
    let member = |name: &str| -> Result<&Value, String> {
        obj.get(name)
            .ok_or_else(|| format!("the operation {op} has no {name:?}"))
    };
    let string = |name: &str| -> Result<&str, String> {
        member(name)?
            .as_str()
            .ok_or_else(|| format!("{name:?} of {op} is not a string"))
    };
    let kind = string("op")?;
    let path = parse_pointer(string("path")?)?;
    match kind {
        "add" => add(doc, &path, member("value")?.clone()),
        "remove" => remove(doc, &path).map(|_| ()),
        "replace" => {
            let value = member("value")?.clone();
            let target = get_mut(doc, &path)?;
            *target = value;
            Ok(())
        }
        "move" => {
            let from = parse_pointer(string("from")?)?;
            if from.len() < path.len() && path[..from.len()] == from[..] {
                return Err(format!(
                    "cannot move {:?} into its own child {:?}",
                    string("from")?,
                    string("path")?
                ));
            }
            let value = remove(doc, &from)?;
            add(doc, &path, value)
        }
        "copy" => {
            let from = parse_pointer(string("from")?)?;
            let value = get(doc, &from)?.clone();
            add(doc, &path, value)
        }
        "test" => {
            let want = member("value")?;
            let got = get(doc, &path)?;
            if json_equal(got, want) {
                Ok(())
            } else {
                Err(format!(
                    "test failed: {:?} is {got}, not {want}",
                    string("path")?
                ))
            }
        }
        other => Err(format!("unknown operation {other:?}")),
    }
}

/// The reference tokens of a JSON Pointer (RFC 6901 3, 4).
pub fn parse_pointer(p: &str) -> Result<Vec<String>, String> {
    if p.is_empty() {
        return Ok(Vec::new());
    }
    let rest = p
        .strip_prefix('/')
        .ok_or_else(|| format!("the JSON pointer {p:?} does not start with '/'"))?;
    rest.split('/')
        .map(|t| {
            let mut out = String::with_capacity(t.len());
            let mut chars = t.chars();
            while let Some(c) = chars.next() {
                if c == '~' {
                    match chars.next() {
                        Some('0') => out.push('~'),
                        Some('1') => out.push('/'),
                        _ => return Err(format!("bad escape in the JSON pointer {p:?}")),
                    }
                } else {
                    out.push(c);
                }
            }
            Ok(out)
        })
        .collect()
}

/// An array index token: `0` or digits without a leading zero.
fn index(token: &str) -> Result<usize, String> {
    let digits = !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit());
    if !digits || (token.len() > 1 && token.starts_with('0')) {
        return Err(format!("{token:?} is not an array index"));
    }
    token
        .parse()
        .map_err(|_| format!("{token:?} is too large an array index"))
}

fn get<'a>(doc: &'a Value, path: &[String]) -> Result<&'a Value, String> {
    let mut cur = doc;
    for t in path {
        cur = match cur {
            Value::Object(m) => m.get(t),
            Value::Array(a) => a.get(index(t)?),
            _ => None,
        }
        .ok_or_else(|| format!("no value at /{}", path.join("/")))?;
    }
    Ok(cur)
}

fn get_mut<'a>(doc: &'a mut Value, path: &[String]) -> Result<&'a mut Value, String> {
    let mut cur = doc;
    for t in path {
        cur = match cur {
            Value::Object(m) => m.get_mut(t),
            Value::Array(a) => {
                let i = index(t)?;
                a.get_mut(i)
            }
            _ => None,
        }
        .ok_or_else(|| format!("no value at /{}", path.join("/")))?;
    }
    Ok(cur)
}

fn add(doc: &mut Value, path: &[String], value: Value) -> Result<(), String> {
    let Some((last, parent)) = path.split_last() else {
        *doc = value;
        return Ok(());
    };
    match get_mut(doc, parent)? {
        Value::Object(m) => {
            m.insert(last.clone(), value);
            Ok(())
        }
        Value::Array(a) => {
            if last == "-" {
                a.push(value);
                return Ok(());
            }
            let i = index(last)?;
            if i > a.len() {
                return Err(format!(
                    "index {i} is past the end of the array at /{} ({} elements)",
                    parent.join("/"),
                    a.len()
                ));
            }
            a.insert(i, value);
            Ok(())
        }
        other => Err(format!(
            "cannot add a member to {other} at /{}",
            parent.join("/")
        )),
    }
}

fn remove(doc: &mut Value, path: &[String]) -> Result<Value, String> {
    let (last, parent) = path
        .split_last()
        .ok_or_else(|| "cannot remove the whole document".to_string())?;
    let missing = || format!("no value at /{} to remove", path.join("/"));
    match get_mut(doc, parent)? {
        Value::Object(m) => m.remove(last).ok_or_else(missing),
        Value::Array(a) => {
            let i = index(last)?;
            if i >= a.len() {
                return Err(missing());
            }
            Ok(a.remove(i))
        }
        _ => Err(missing()),
    }
}

/// RFC 6902 4.6 equality.
fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            x == y || matches!((x.as_f64(), y.as_f64()), (Some(p), Some(q)) if p == q)
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_equal(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ok(doc: Value, patch: Value, want: Value) {
        assert_eq!(apply_patch(&doc, &patch), Ok(want), "{patch}");
    }

    fn err(doc: Value, patch: Value) -> String {
        apply_patch(&doc, &patch)
            .expect_err(&patch.to_string())
            .message
    }

    // RFC 6902 Appendix A, each example as the RFC gives it.

    #[test]
    fn a1_adding_an_object_member() {
        ok(
            json!({"foo": "bar"}),
            json!([{"op": "add", "path": "/baz", "value": "qux"}]),
            json!({"baz": "qux", "foo": "bar"}),
        );
    }

    #[test]
    fn a2_adding_an_array_element() {
        ok(
            json!({"foo": ["bar", "baz"]}),
            json!([{"op": "add", "path": "/foo/1", "value": "qux"}]),
            json!({"foo": ["bar", "qux", "baz"]}),
        );
    }

    #[test]
    fn a3_removing_an_object_member() {
        ok(
            json!({"baz": "qux", "foo": "bar"}),
            json!([{"op": "remove", "path": "/baz"}]),
            json!({"foo": "bar"}),
        );
    }

    #[test]
    fn a4_removing_an_array_element() {
        ok(
            json!({"foo": ["bar", "qux", "baz"]}),
            json!([{"op": "remove", "path": "/foo/1"}]),
            json!({"foo": ["bar", "baz"]}),
        );
    }

    #[test]
    fn a5_replacing_a_value() {
        ok(
            json!({"baz": "qux", "foo": "bar"}),
            json!([{"op": "replace", "path": "/baz", "value": "boo"}]),
            json!({"baz": "boo", "foo": "bar"}),
        );
    }

    #[test]
    fn a6_moving_a_value() {
        ok(
            json!({"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}}),
            json!([{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}]),
            json!({"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}}),
        );
    }

    #[test]
    fn a7_moving_an_array_element() {
        ok(
            json!({"foo": ["all", "grass", "cows", "eat"]}),
            json!([{"op": "move", "from": "/foo/1", "path": "/foo/3"}]),
            json!({"foo": ["all", "cows", "eat", "grass"]}),
        );
    }

    #[test]
    fn a8_testing_a_value_success() {
        let doc = json!({"baz": "qux", "foo": ["a", 2, "c"]});
        ok(
            doc.clone(),
            json!([
                {"op": "test", "path": "/baz", "value": "qux"},
                {"op": "test", "path": "/foo/1", "value": 2}
            ]),
            doc,
        );
    }

    #[test]
    fn a9_testing_a_value_error() {
        let e = err(
            json!({"baz": "qux"}),
            json!([{"op": "test", "path": "/baz", "value": "bar"}]),
        );
        assert!(e.contains("test failed"), "{e}");
    }

    #[test]
    fn a10_adding_a_nested_member_object() {
        ok(
            json!({"foo": "bar"}),
            json!([{"op": "add", "path": "/child", "value": {"grandchild": {}}}]),
            json!({"foo": "bar", "child": {"grandchild": {}}}),
        );
    }

    #[test]
    fn a11_ignoring_unrecognized_elements() {
        ok(
            json!({"foo": "bar"}),
            json!([{"op": "add", "path": "/baz", "value": "qux", "xyz": 123}]),
            json!({"foo": "bar", "baz": "qux"}),
        );
    }

    #[test]
    fn a12_adding_to_a_nonexistent_target() {
        let e = err(
            json!({"foo": "bar"}),
            json!([{"op": "add", "path": "/baz/bat", "value": "qux"}]),
        );
        assert!(e.contains("no value at /baz"), "{e}");
    }

    /// A.13's patch repeats `op` within one object; a JSON parser keeps one of them (serde_json
    /// the last), so what reaches the patch is a valid `remove`, or, as here with the members
    /// reordered, an operation missing what its kind needs: refused.
    #[test]
    fn a13_invalid_json_patch_document() {
        let e = err(
            json!({"foo": "bar", "baz": 1}),
            json!([{"op": "add", "path": "/baz"}]),
        );
        assert!(e.contains("has no \"value\""), "{e}");
    }

    #[test]
    fn a14_tilde_escape_ordering() {
        let doc = json!({"/": 9, "~1": 10});
        ok(
            doc.clone(),
            json!([{"op": "test", "path": "/~01", "value": 10}]),
            doc,
        );
    }

    #[test]
    fn a15_comparing_strings_and_numbers() {
        let e = err(
            json!({"/": 9, "~1": 10}),
            json!([{"op": "test", "path": "/~01", "value": "10"}]),
        );
        assert!(e.contains("test failed"), "{e}");
    }

    #[test]
    fn a16_adding_an_array_value() {
        ok(
            json!({"foo": ["bar"]}),
            json!([{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}]),
            json!({"foo": ["bar", ["abc", "def"]]}),
        );
    }

    #[test]
    fn errors_leave_the_document_untouched_and_name_the_operation() {
        let doc = json!({"a": [1, 2]});
        let e = apply_patch(
            &doc,
            &json!([
                {"op": "add", "path": "/b", "value": 1},
                {"op": "remove", "path": "/a/2"}
            ]),
        )
        .unwrap_err();
        assert_eq!(e.index, 1);
        for (patch, want) in [
            (json!({"op": "add"}), "array of operations"),
            (
                json!([{"op": "add", "path": "/a/01", "value": 0}]),
                "not an array index",
            ),
            (
                json!([{"op": "add", "path": "/a/3", "value": 0}]),
                "past the end",
            ),
            (
                json!([{"op": "remove", "path": "/a/-"}]),
                "not an array index",
            ),
            (
                json!([{"op": "replace", "path": "/x", "value": 0}]),
                "no value at /x",
            ),
            (
                json!([{"op": "move", "from": "/a", "path": "/a/0"}]),
                "own child",
            ),
            (json!([{"op": "copy", "path": "/b"}]), "no \"from\""),
            (json!([{"op": "frob", "path": "/b"}]), "unknown operation"),
            (
                json!([{"op": "add", "path": "a", "value": 0}]),
                "does not start with '/'",
            ),
            (
                json!([{"op": "test", "path": "/a/~2", "value": 0}]),
                "bad escape",
            ),
            (json!([{"op": "remove", "path": ""}]), "whole document"),
        ] {
            let e = apply_patch(&doc, &patch).unwrap_err().message;
            assert!(e.contains(want), "{patch}: {e}");
        }
    }

    #[test]
    fn root_replacement_copy_null_values_and_numeric_equality() {
        ok(
            json!({"a": 1}),
            json!([{"op": "add", "path": "", "value": [1]}]),
            json!([1]),
        );
        ok(
            json!({"a": 1}),
            json!([{"op": "replace", "path": "", "value": 2}]),
            json!(2),
        );
        ok(
            json!({"a": {"b": 1}}),
            json!([{"op": "copy", "from": "/a", "path": "/c"}]),
            json!({"a": {"b": 1}, "c": {"b": 1}}),
        );
        ok(
            json!({}),
            json!([{"op": "add", "path": "/n", "value": null}]),
            json!({"n": null}),
        );
        let doc = json!({"n": 1, "o": {"x": [1, {"y": 2}], "z": "s"}});
        ok(
            doc.clone(),
            json!([
                {"op": "test", "path": "/n", "value": 1.0},
                {"op": "test", "path": "/o", "value": {"z": "s", "x": [1.0, {"y": 2}]}}
            ]),
            doc.clone(),
        );
        // a move to the same place is allowed and changes nothing
        ok(
            doc.clone(),
            json!([{"op": "move", "from": "/o", "path": "/o"}]),
            doc,
        );
    }
}
