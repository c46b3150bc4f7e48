//! `berth update --network-bandwidth egress=RATE,ingress=RATE[,burst=SIZE] CONTAINER…`:
//! change a container's traffic shaping while it runs (`berth_engine::shaping`).

use anyhow::Context;
use clap::Args;

use super::DataArgs;

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// New shaping of the container's network: egress=RATE,ingress=RATE[,burst=SIZE]
    /// (10mbit, 1M); a direction left out is no longer shaped.
    #[arg(long = "network-bandwidth", value_name = "egress=RATE,ingress=RATE")]
    network_bandwidth: Option<String>,
    #[command(flatten)]
    data: DataArgs,
    /// Containers (names, ids or unique id prefixes).
    #[arg(required = true)]
    containers: Vec<String>,
}

pub fn run(args: UpdateArgs) -> anyhow::Result<i32> {
    let Some(spec) = &args.network_bandwidth else {
        anyhow::bail!("nothing to update: give --network-bandwidth egress=RATE,ingress=RATE");
    };
    let bw = berth_engine::network::parse_bandwidth(spec).map_err(anyhow::Error::msg)?;
    let engine = args.data.engine()?;
    super::each(&args.containers, |c| {
        engine
            .update_network_bandwidth(c, bw)
            .map(|_| ())
            .with_context(|| format!("failed to update container {c}"))
    })?;
    Ok(0)
}
