//! `features`: the runtime-spec features JSON.

pub fn run() -> anyhow::Result<u8> {
    let text = serde_json::to_string_pretty(&berth_container::features::features())?;
    super::print(&format!("{text}\n"));
    Ok(0)
}
