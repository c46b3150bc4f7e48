//! `update`'s resources: what the command line asks for (a runtime-spec LinuxResources
//! patch, from `--resources` or runc's per-field flags) merged into the container's
//! recorded resources, so that fields the update does not mention keep their values (as
//! runc merges into its `config.Cgroups.Resources`).
//!
//! The merge works on JSON, before the typed parse, because a patch is partial: a field it
//! does not name keeps its value, and one it names as 0 becomes 0 (a `pids` without a
//! `limit` is no `pids` limit at all: `berth_runtime_spec::LinuxResources::pids`).

use berth_runtime_spec::LinuxResources;
use serde::Deserialize;
use serde_json::Value;

/// What went wrong merging an update into a container's resources.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    #[error("the resources update is not a JSON object")]
    NotAnObject,
    #[error("invalid resources after the update")]
    Invalid {
        #[source]
        source: serde_json::Error,
    },
    #[error("failed to serialise the container's current resources")]
    Current {
        #[source]
        source: serde_json::Error,
    },
}

/// Merge `patch` (a LinuxResources JSON object) into `current`: objects merge key by key,
/// anything else replaces. Device rules are not updated (runc's `update` skips them
/// too); a memory limit of -1 without a swap value also lifts swap (runc's v1
/// compatibility rule).
pub fn merge(
    current: Option<&LinuxResources>,
    patch: &Value,
) -> Result<LinuxResources, UpdateError> {
    let Some(patch) = patch.as_object() else {
        return Err(UpdateError::NotAnObject);
    };
    let mut merged = match current {
        Some(r) => serde_json::to_value(r).map_err(|source| UpdateError::Current { source })?,
        None => Value::Object(serde_json::Map::new()),
    };
    let mut patch = patch.clone();
    patch.remove("devices");
    if let Some(memory) = patch.get_mut("memory").and_then(Value::as_object_mut)
        && memory.get("limit").and_then(Value::as_i64) == Some(-1)
        && !memory.contains_key("swap")
    {
        memory.insert("swap".to_owned(), Value::from(-1));
    }
    merge_json(&mut merged, &Value::Object(patch));
    parse(&merged)
}

/// A LinuxResources from its JSON.
pub fn parse(raw: &Value) -> Result<LinuxResources, UpdateError> {
    LinuxResources::deserialize(raw).map_err(|source| UpdateError::Invalid { source })
}

fn merge_json(into: &mut Value, patch: &Value) {
    match (into, patch) {
        (Value::Object(into), Value::Object(patch)) => {
            for (k, v) in patch {
                match into.get_mut(k) {
                    Some(slot) if slot.is_object() && v.is_object() => merge_json(slot, v),
                    _ => {
                        into.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (into, patch) => *into = patch.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn current() -> LinuxResources {
        parse(&json!({
            "devices": [{"allow": false, "access": "rwm"}],
            "memory": {"limit": 1_000_000, "swap": 2_000_000},
            "pids": {"limit": 50},
            "cpu": {"shares": 100, "cpus": "0-1"}
        }))
        .unwrap()
    }

    #[test]
    fn fields_not_in_the_update_keep_their_values() {
        let r = merge(Some(&current()), &json!({"pids": {"limit": 8}})).unwrap();
        assert_eq!(r.pids.as_ref().unwrap().limit, 8);
        assert_eq!(r.memory.as_ref().unwrap().limit, Some(1_000_000));
        assert_eq!(r.memory.as_ref().unwrap().swap, Some(2_000_000));
        let cpu = r.cpu.as_ref().unwrap();
        assert_eq!((cpu.shares, cpu.cpus.as_deref()), (Some(100), Some("0-1")));
        assert_eq!(
            r.devices.as_ref().map(Vec::len),
            Some(1),
            "devices are kept"
        );
    }

    #[test]
    fn nested_fields_merge_and_devices_are_not_updated() {
        let r = merge(
            Some(&current()),
            &json!({"cpu": {"quota": 5000}, "devices": [{"allow": true, "access": "rwm"}]}),
        )
        .unwrap();
        let cpu = r.cpu.as_ref().unwrap();
        assert_eq!((cpu.quota, cpu.shares), (Some(5000), Some(100)));
        let devices = r.devices.as_ref().unwrap();
        assert_eq!(devices.len(), 1);
        assert!(!devices[0].allow, "the update's device rule was dropped");
    }

    #[test]
    fn an_unlimited_memory_limit_lifts_swap_unless_given() {
        let r = merge(Some(&current()), &json!({"memory": {"limit": -1}})).unwrap();
        assert_eq!(r.memory.as_ref().unwrap().swap, Some(-1));
        let r = merge(
            Some(&current()),
            &json!({"memory": {"limit": -1, "swap": 5}}),
        )
        .unwrap();
        assert_eq!(r.memory.as_ref().unwrap().swap, Some(5));
    }

    #[test]
    fn a_pids_limit_of_zero_is_kept_and_an_absent_one_is_none() {
        let r = merge(None, &json!({"pids": {"limit": 0}})).unwrap();
        assert_eq!(r.pids.as_ref().map(|p| p.limit), Some(0));
        let r = merge(None, &json!({"pids": {}})).unwrap();
        assert!(r.pids.is_none());
        let r = merge(None, &json!({"memory": {"limit": 5}})).unwrap();
        assert!(r.pids.is_none());
        // a recorded limit survives an update that does not mention pids
        let r = merge(Some(&current()), &json!({"memory": {"limit": 5}})).unwrap();
        assert_eq!(r.pids.as_ref().map(|p| p.limit), Some(50));
    }

    #[test]
    fn bad_updates_are_errors() {
        assert!(matches!(
            merge(None, &json!([1])),
            Err(UpdateError::NotAnObject)
        ));
        assert!(matches!(
            merge(None, &json!({"pids": {"limit": "ten"}})),
            Err(UpdateError::Invalid { .. })
        ));
    }
}
