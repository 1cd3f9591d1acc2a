//! The `mkoba` binary's library: the server (all of [`mkoba_server`], re-exported so
//! `mkoba::start` and friends read as before) and the client side that talks to a server
//! over HTTP through `mkoba-sdk`: the `mkoba momo`, `mkoba mpesa` and `mkoba clock`
//! subcommands and the benches. The server itself never depends on the SDK.

pub use mkoba_server::*;

pub mod bench;
pub mod bench_mpesa;
pub mod client_cli;
pub mod mpesa_cli;
