//! Placeholder for the `mkoba bench` load generator (being written).

/// Benchmark options.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Base URL of a running server
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Collection subscription key (primary); if omitted, read from --data via mkoba credentials
    #[arg(long, env = "MKOBA_BENCH_KEY")]
    pub subscription_key: Option<String>,
    /// number of request-to-pay lifecycles
    #[arg(long, short = 'n', default_value_t = 20_000)]
    pub requests: usize,
    /// concurrent in-flight requests
    #[arg(long, short = 'c', default_value_t = 64)]
    pub concurrency: usize,
    /// also GET the status of every request once after its callback
    #[arg(long)]
    pub poll: bool,
    /// print the report as JSON
    #[arg(long)]
    pub json: bool,
}

/// The benchmark's findings.
#[derive(Debug, serde::Serialize)]
pub struct Report {}

impl Report {
    /// Prints the report for people.
    pub fn print_human(&self) {}
}

/// Runs the benchmark.
pub async fn run(_args: BenchArgs, _subscription_key: String) -> anyhow::Result<Report> {
    anyhow::bail!("not built yet")
}
