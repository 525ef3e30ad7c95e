//! The `dbkv` binary. `dbkv serve` runs the Redis-protocol server; the
//! operator tools (`check`, `dump`, `load`, `stats`) live in `tools`.

mod progress;
mod serve;
mod server;
mod tools;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "dbkv", version, about = "dbkv: durable task results, counters and locks with fencing tokens")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve a data directory over the Redis protocol (RESP2/RESP3).
    Serve(Box<serve::ServeArgs>),
    /// Verify every WAL segment and snapshot of a data directory and say what recovery in each mode would do
    /// (exit 0 clean, 1 damage found, 2 could not run); --repair does it.
    Check(tools::check::CheckArgs),
    /// Write every live key with its type, value and expiry (JSON Lines or RESP), as of one instant.
    Dump(tools::dump::DumpArgs),
    /// Read a dump into a data directory as one batch (exit 1 on bad input or existing keys, nothing written).
    Load(tools::load::LoadArgs),
    /// Keys, memory, segments and snapshots of a data directory, and whether a process holds it.
    Stats(tools::stats::StatsArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand) {
                let _ = e.print();
                return if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand { ExitCode::from(2) } else { ExitCode::SUCCESS };
            }
            // One line naming the flag, as the README promises.
            let text = e.render().to_string();
            eprintln!("{}", text.lines().next().unwrap_or("error: invalid arguments"));
            return ExitCode::from(2);
        }
    };
    match cli.command {
        Command::Serve(args) => serve::run(*args),
        Command::Check(a) => tools::exit(tools::check::run(&a)),
        Command::Dump(a) => tools::exit(tools::dump::run(&a)),
        Command::Load(a) => tools::exit(tools::load::run(&a)),
        Command::Stats(a) => tools::exit(tools::stats::run(&a)),
    }
}
