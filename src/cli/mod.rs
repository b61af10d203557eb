//! The command line, the only module that imports clap: `args` holds the
//! clap definitions (each field's doc comment is the manual `--help` shows),
//! `values` the closed sets of values (`ValueEnum`s mapped to the
//! library's own types) and value parsers, `commands` maps each command to
//! its stage's functions and prints their text; this file parses, runs and
//! turns errors into the `error: … — fix: …` line and an exit code.

mod args;
mod commands;
mod values;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

use crate::error::{Error, describe_chain};
use crate::pg::TargetOptions;
use crate::runfolder::Access;
use args::{CONNECTION_OPTIONS, Cli, Command, FILE_ONLY_COMMANDS};
use commands::{
    advise_command, capture_command, compare_command, demo_command, explain_command,
    generate_command, pg_command, rehearse_command, report_command, run_command, schema_command,
};

/// Exit code of a successful command.
pub const EXIT_OK: u8 = 0;
/// Exit code of a run whose results break a limit (error rate, self-check).
pub const EXIT_FAILED: u8 = 1;
/// Exit code of any error (bad input, unreachable server, refused action).
pub const EXIT_ERROR: u8 = 2;

/// Parse arguments, run the command, print any error, return the exit code.
pub fn run<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match parse(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_ERROR } else { EXIT_OK });
        }
    };
    init_tracing(cli.verbose);
    // Commands that load, measure or clone stop cleanly on SIGINT, SIGTERM
    // and SIGHUP alike: partial results written, copies dropped, exit 2.
    if cli.command.stops_cleanly() {
        if let Err(e) = crate::signals::install() {
            report_error(&e.into());
            return ExitCode::from(EXIT_ERROR);
        }
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            err_line(format!("error: cannot start the async runtime: {e}"));
            return ExitCode::from(EXIT_ERROR);
        }
    };
    let access = if cli.shareable {
        Access::Shareable
    } else {
        Access::Private
    };
    match runtime.block_on(execute(cli.command, &cli.target.options(), access)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            report_error(&e);
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// The clap command, with the connection options hidden in
/// [`FILE_ONLY_COMMANDS`]: a command that has an argument of a global one's
/// id does not get the global one, and its value still reaches [`Cli`].
fn command() -> clap::Command {
    let cmd = Cli::command();
    let hidden: Vec<clap::Arg> = cmd
        .get_arguments()
        .filter(|a| a.get_help_heading() == Some(CONNECTION_OPTIONS))
        .map(|a| a.clone().hide(true))
        .collect();
    FILE_ONLY_COMMANDS.into_iter().fold(cmd, |cmd, name| {
        cmd.mut_subcommand(name, |sub| sub.args(hidden.iter().cloned()))
    })
}

/// As `Cli::try_parse_from`, on [`command`].
fn parse<I, T>(args: I) -> std::result::Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let mut matches = command().try_get_matches_from(args)?;
    Cli::from_arg_matches_mut(&mut matches).map_err(|e| e.format(&mut command()))
}

pub(crate) use crate::console::{err_line, out};

fn report_error(e: &anyhow::Error) {
    // The chain without repeats: an error whose message already holds its
    // source's (e.g. an I/O error naming the OS error) says it once.
    let mut line = format!("error: {}", describe_chain(e.as_ref()));
    if let Some(lib) = e.downcast_ref::<Error>() {
        if let Some(fix) = lib.fix() {
            line.push_str(&format!(" — fix: {fix}"));
        }
        err_line(line);
        if let Some(details) = lib.details() {
            for l in details.lines() {
                err_line(format!("    {l}"));
            }
        }
    } else {
        err_line(line);
    }
}

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "crmbench=debug,info",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

async fn execute(command: Command, opts: &TargetOptions, access: Access) -> anyhow::Result<u8> {
    match command {
        Command::Demo(args) => return demo_command(args, opts, access).await,
        Command::Pg(cmd) => out(pg_command(cmd, opts).await?)?,
        Command::Schema(cmd) => out(schema_command(cmd, opts).await?)?,
        Command::Generate(args) => generate_command(args, opts, access).await?,
        Command::Run(args) => return Ok(run_command(*args, opts, access).await?),
        Command::Explain(args) => explain_command(args, opts, access).await?,
        Command::Advise(args) => return Ok(advise_command(args, opts, access).await?),
        Command::Report(args) => report_command(&args, access)?,
        Command::Compare(args) => return Ok(compare_command(args)?),
        Command::Audit(args) => return Ok(commands::audit_command(args, opts).await?),
        Command::Erase(args) => out(commands::erase_command(args, opts).await?)?,
        Command::Capture(args) => return Ok(capture_command(args, opts).await?),
        Command::Rehearse(args) => return Ok(rehearse_command(*args, opts, access).await?),
        Command::Merge(args) => out(commands::merge_command(args, access)?)?,
        Command::Export(args) => out(commands::export_command(args, opts).await?)?,
        Command::Import(args) => out(commands::import_command(args, opts).await?)?,
    }
    Ok(EXIT_OK)
}
