//! The command line: clap definitions (the only module that imports clap) and
//! dispatch to the library's stages. `--help` on every command is the manual.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::error::{Error, Result};
use crate::pg::private::{self, PrivateOptions, PrivateServer, StartOutcome};
use crate::pg::{self, Target, TargetOptions, roles, settings};
use crate::schema;

/// Exit code of a successful command.
pub const EXIT_OK: u8 = 0;
/// Exit code of any error (bad input, unreachable server, refused action).
pub const EXIT_ERROR: u8 = 2;

/// crmbench: a query performance advisor and benchmark harness for PostgreSQL,
/// around a multi-tenant jewellery CRM under row-level security.
///
/// By default every command works on crmbench's private PostgreSQL server,
/// started on demand from the local server binaries in a folder crmbench owns
/// (default /var/tmp/crmbench-$UID), on its own port and socket. Pass
/// --database-url (or DATABASE_URL) to work on any existing server instead;
/// crmbench never starts or stops that one, and changes nothing there beyond its
/// own schema `crm` without --allow-ddl.
///
/// Exit codes: 0 success, 2 any error (the message names the cause and the fix).
#[derive(Debug, Parser)]
#[command(name = "crmbench", version, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    target: TargetArgs,

    /// More log output (-v: debug, -vv: trace). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,

    #[command(subcommand)]
    command: Command,
}

/// Where to work: shared by every command.
#[derive(Debug, Args)]
struct TargetArgs {
    /// Work on an existing server instead of the private one, e.g.
    /// postgresql://user:password@host:5432/dbname. Its password is never printed.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    database_url: Option<String>,

    /// Allow changes beyond crmbench's own schema on a --database-url server:
    /// creating roles and extensions, building indexes, cloning databases.
    #[arg(long, global = true)]
    allow_ddl: bool,

    /// Folder with the PostgreSQL server binaries (initdb, pg_ctl, postgres).
    /// Default: `pg_config --bindir`, then PATH, then the newest
    /// /usr/lib/postgresql/*/bin (preferring one with HypoPG installed).
    #[arg(long, env = "CRMBENCH_PG_BINDIR", global = true)]
    pg_bindir: Option<PathBuf>,

    /// The private server's folder (cluster.json, data/, run/, server.log).
    /// Must be reachable by the server's user: as root the server runs as
    /// `postgres`, who cannot enter /root or a 0700 checkout.
    /// [default: /var/tmp/crmbench-$UID]
    #[arg(long, env = "CRMBENCH_DATA_DIR", global = true)]
    data_dir: Option<PathBuf>,

    /// Port for a new private server (default: the first free one from 54329).
    #[arg(long, env = "CRMBENCH_PG_PORT", global = true)]
    pg_port: Option<u16>,
}

impl TargetArgs {
    fn options(&self) -> TargetOptions {
        TargetOptions {
            database_url: self.database_url.clone(),
            allow_ddl: self.allow_ddl,
            private: PrivateOptions {
                base_dir: self.data_dir.clone(),
                bindir: self.pg_bindir.clone(),
                port: self.pg_port,
                shared_buffers: None,
            },
        }
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Manage the private PostgreSQL server.
    #[command(subcommand)]
    Pg(PgCommand),
    /// Create, drop or inspect the CRM schema.
    #[command(subcommand)]
    Schema(SchemaCommand),
}

#[derive(Debug, Subcommand)]
enum PgCommand {
    /// Start the private server, initialising it on first use. Idempotent: a
    /// running server is reused. Creates the roles and the `crmbench` database.
    Start,
    /// Stop the private server crmbench started (never any other server).
    Stop,
    /// Say whether the private server runs, where, and which settings are in force.
    Status,
    /// Print a connection URL that psql accepts, e.g. psql "$(crmbench pg url)".
    Url {
        /// The application role's URL (row-level security applies) instead of
        /// the superuser's.
        #[arg(long)]
        app: bool,
    },
}

#[derive(Debug, Subcommand)]
enum SchemaCommand {
    /// Create the CRM schema `crm`: tables, keys, baseline indexes, forced
    /// row-level security, the roles crmbench_owner and crmbench_app, and the
    /// HypoPG / pg_stat_statements extensions when available.
    Create {
        /// Drop and recreate the schema if crmbench created it (data is lost).
        #[arg(long)]
        replace: bool,
    },
    /// Drop the CRM schema, only if it carries crmbench's marker.
    Drop,
    /// Print tables, row counts, sizes, indexes and row-level security state.
    Show {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// Parse arguments, run the command, print any error, return the exit code.
pub fn run<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_ERROR } else { EXIT_OK });
        }
    };
    init_tracing(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(()) => ExitCode::from(EXIT_OK),
        Err(e) => {
            report_error(&e);
            ExitCode::from(EXIT_ERROR)
        }
    }
}

fn report_error(e: &anyhow::Error) {
    let mut line = format!("error: {e:#}");
    if let Some(lib) = e.downcast_ref::<Error>() {
        if let Some(fix) = lib.fix() {
            line.push_str(&format!(" — fix: {fix}"));
        }
        eprintln!("{line}");
        if let Some(details) = lib.details() {
            for l in details.lines() {
                eprintln!("    {l}");
            }
        }
    } else {
        eprintln!("{line}");
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

async fn dispatch(cli: Cli) -> anyhow::Result<()> {
    let opts = cli.target.options();
    match cli.command {
        Command::Pg(cmd) => pg_command(cmd, &opts).await?,
        Command::Schema(cmd) => schema_command(cmd, &opts).await?,
    }
    Ok(())
}

fn refuse_external(opts: &TargetOptions, what: &str) -> Result<()> {
    if opts.database_url.is_some() {
        return Err(Error::Usage {
            message: format!(
                "`crmbench pg {what}` manages the private server only; crmbench never starts, \
                 stops or describes a server given by --database-url / DATABASE_URL"
            ),
            fix: "unset DATABASE_URL or drop --database-url for this command".into(),
        });
    }
    Ok(())
}

async fn pg_command(cmd: PgCommand, opts: &TargetOptions) -> Result<()> {
    match cmd {
        PgCommand::Start => {
            refuse_external(opts, "start")?;
            let (target, outcome) = Target::resolve(opts, true)?;
            pg::bootstrap_private(&target).await?;
            let Target::Private { server, .. } = &target else {
                return Ok(());
            };
            let verb = match outcome {
                Some(StartOutcome::Initialised) => "initialised and started",
                Some(StartOutcome::Started) => "started",
                _ => "already running; reused",
            };
            println!(
                "crmbench: private PostgreSQL {} {verb} on port {} (data: {})",
                server.state().binaries.major,
                server.port(),
                server.base_dir().display()
            );
            println!("  connect:   psql \"$(crmbench pg url)\"");
            println!(
                "  admin URL: {}",
                server.url(private::SUPERUSER, private::DATABASE)
            );
            println!("  app URL:   {}", server.url(roles::APP, private::DATABASE));
            println!("  stop:      crmbench pg stop");
        }
        PgCommand::Stop => {
            refuse_external(opts, "stop")?;
            match PrivateServer::open(&opts.private)? {
                None => println!("crmbench: no private server here; nothing to stop"),
                Some(server) => {
                    if server.stop()? {
                        println!("crmbench: private server on port {} stopped", server.port());
                    } else {
                        println!(
                            "crmbench: private server on port {} was not running",
                            server.port()
                        );
                    }
                }
            }
        }
        PgCommand::Status => {
            refuse_external(opts, "status")?;
            status(opts).await?;
        }
        PgCommand::Url { app } => {
            refuse_external(opts, "url")?;
            let (target, _) = Target::resolve(opts, false)?;
            if let Target::Private { server, .. } = &target {
                let user = if app { roles::APP } else { private::SUPERUSER };
                println!("{}", server.url(user, private::DATABASE));
            }
        }
    }
    Ok(())
}

async fn status(opts: &TargetOptions) -> Result<()> {
    let Some(server) = PrivateServer::open(&opts.private)? else {
        let base = opts
            .private
            .base_dir
            .clone()
            .unwrap_or_else(private::default_base_dir);
        println!("private server: not created (folder {})", base.display());
        println!("  start it with: crmbench pg start");
        return Ok(());
    };
    let running = server.is_running()?;
    println!(
        "private server: {}",
        if running { "running" } else { "stopped" }
    );
    println!(
        "  PostgreSQL:  {} ({})",
        server.state().binaries.major,
        server.state().binaries.bindir.display()
    );
    println!("  port:        {}", server.port());
    println!("  socket dir:  {}", server.socket_dir().display());
    println!("  data dir:    {}", server.data_dir().display());
    println!("  log:         {}", server.log_path().display());
    if let Some(user) = &server.state().server_user {
        println!("  runs as:     OS user {user}");
    }
    println!(
        "  admin URL:   {}",
        server.url(private::SUPERUSER, private::DATABASE)
    );
    if running {
        let target = Target::private(server);
        let client = pg::connect(&target.admin_to("postgres")).await?;
        println!("  settings in force:");
        for name in settings::REPORTED {
            let row = client
                .query_opt(
                    "SELECT setting, coalesce(unit, '') FROM pg_settings WHERE name = $1",
                    &[name],
                )
                .await
                .map_err(|e| Error::from_pg("reading pg_settings", e))?;
            if let Some(row) = row {
                let (value, unit): (String, String) = (row.get(0), row.get(1));
                let shown = settings::with_unit(&value, &unit);
                println!("    {name:<32} {shown}");
            }
        }
    }
    Ok(())
}

async fn schema_command(cmd: SchemaCommand, opts: &TargetOptions) -> Result<()> {
    let (target, _) = Target::resolve(opts, true)?;
    match cmd {
        SchemaCommand::Create { replace } => {
            let report = schema::create(&target, &schema::CreateOptions { replace }).await?;
            println!(
                "crmbench: CRM schema {} in database {} on {}: {} tables, row-level security forced",
                if report.replaced {
                    "recreated"
                } else {
                    "created"
                },
                target.database(),
                target.describe(),
                report.tables
            );
            for ext in &report.extensions {
                println!("  extension {:<20} {}", ext.name, ext.note);
            }
        }
        SchemaCommand::Drop => match schema::drop(&target).await? {
            schema::DropOutcome::Dropped => {
                println!(
                    "crmbench: schema crm dropped from database {}",
                    target.database()
                )
            }
            schema::DropOutcome::Absent => {
                println!(
                    "crmbench: database {} has no schema crm; nothing dropped",
                    target.database()
                )
            }
        },
        SchemaCommand::Show { json } => {
            let report = schema::show::show(&target).await?;
            if json {
                let text = serde_json::to_string_pretty(&report).map_err(|e| Error::Usage {
                    message: format!("serializing the report: {e}"),
                    fix: String::new(),
                })?;
                println!("{text}");
            } else {
                print!("{}", report.render());
            }
        }
    }
    Ok(())
}
