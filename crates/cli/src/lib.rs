//! The `mkoba` binary's library: the server (all of [`mkoba_server`], re-exported so
//! `mkoba::start` and friends read as before) and the client side that talks to a server
//! over HTTP through `mkoba-sdk`: the `mkoba momo`, `mkoba mpesa` and `mkoba clock`
//! subcommands and the benches. The server itself never depends on the SDK.

pub use mkoba_server::*;

pub mod bench;
pub mod bench_mpesa;
pub mod client_cli;
pub mod mpesa_cli;

/// An error in how a command was given (a value it cannot take, a missing argument): the
/// binary exits with status 2 for it, as for the usage errors the argument parser finds.
#[derive(Debug)]
pub struct Usage(pub String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

/// `anyhow::bail!` for a [`Usage`] error.
#[macro_export]
macro_rules! usage {
    ($($arg:tt)*) => {
        return Err(anyhow::Error::new($crate::Usage(format!($($arg)*))))
    };
}
