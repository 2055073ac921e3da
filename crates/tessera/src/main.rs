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
mod siem;
mod signals;

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
    let global = cli.global.clone();
    let mut result = runtime.block_on(commands::run(cli));
    // A refusal for want of a stronger sign-in (RFC 9470): sign in again, asking
    // for it, and repeat the command once (a refused request changed nothing).
    if let Err(error) = &result {
        match runtime.block_on(commands::step_up(error, &global)) {
            Ok(true) => result = runtime.block_on(commands::run(cli::Cli::parse())),
            Ok(false) => {}
            Err(step_up) => {
                eprintln!("error: {error:#}");
                eprintln!("error: the stronger sign-in failed: {step_up:#}");
                return ExitCode::FAILURE;
            }
        }
    }
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
