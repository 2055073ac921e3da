//! `tessera`: the server and its command-line client in one binary.
//!
//! `tessera serve` runs the server. Most other commands talk to a running server
//! over its management API, authenticated with a personal access token (`tessera
//! login`). A few work offline on the data directory or database: `audit verify`,
//! `audit checkpoint`, `audit checkpoint-key`, `backup`, `restore`, `migrate` and
//! `recovery-token`.

mod cli;
mod client;
mod commands;
mod offline;
mod output;
mod pim;
mod policy;

use std::process::ExitCode;

use clap::Parser;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
