//! The state of a container (runtime-spec runtime.md "State"): what a runtime's `state`
//! reports and what hooks read on their stdin.

use std::collections::HashMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// runtime-spec's state object. Unknown fields are ignored, so `runc state`'s and
/// `berth-runtime state`'s output (which add `rootfs`, `created` and `owner`) parse too.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// `ociVersion`: the runtime-spec version the state complies with.
    #[serde(rename = "ociVersion")]
    pub version: String,
    pub id: String,
    pub status: Status,
    /// The container process's pid on the host; REQUIRED while `created` or `running`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    /// Absolute path to the bundle directory.
    pub bundle: PathBuf,
    #[serde(default, skip_serializing_if = "HashMap::is_empty")]
    pub annotations: HashMap<String, String>,
}

/// `status`: runtime-spec's four values, and runc's (and crun's) `paused`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Being created (the `create` operation has not finished).
    #[default]
    Creating,
    /// Created, its process not yet started by `start`.
    Created,
    /// Its process runs.
    Running,
    /// Frozen by `pause` (not in runtime-spec; runc's and crun's).
    Paused,
    /// Its process exited.
    Stopped,
}

impl Status {
    /// The spelling in the state object.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_spec_example_round_trips_and_runcs_extras_are_ignored() {
        // runtime.md's example
        let v = json!({
            "ociVersion": "0.2.0",
            "id": "oci-container1",
            "status": "running",
            "pid": 4422,
            "bundle": "/containers/redis",
            "annotations": {"myKey": "myValue"}
        });
        let st: State = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(st.status, Status::Running);
        assert_eq!(st.pid, Some(4422));
        assert_eq!(serde_json::to_value(&st).unwrap(), v);
        // runc's `state`: extra fields, no annotations
        let runc = json!({"ociVersion": "1.0.2-dev", "id": "c", "pid": 0, "status": "stopped",
                          "bundle": "/b", "rootfs": "/b/rootfs",
                          "created": "2024-02-29T23:59:59.12Z", "owner": ""});
        let st: State = serde_json::from_value(runc).unwrap();
        assert_eq!((st.status, st.pid), (Status::Stopped, Some(0)));
        assert!(st.annotations.is_empty());
        // a stopped container without a pid writes none
        let v = serde_json::to_value(State { pid: None, ..st }).unwrap();
        assert!(
            v.get("pid").is_none() && v.get("annotations").is_none(),
            "{v}"
        );
    }

    #[test]
    fn every_status_is_spelled_as_its_display() {
        for s in [
            Status::Creating,
            Status::Created,
            Status::Running,
            Status::Paused,
            Status::Stopped,
        ] {
            assert_eq!(serde_json::to_value(s).unwrap(), json!(s.to_string()));
            let back: Status = serde_json::from_value(json!(s.as_str())).unwrap();
            assert_eq!(back, s);
        }
        assert!(serde_json::from_value::<Status>(json!("Running")).is_err());
    }
}
