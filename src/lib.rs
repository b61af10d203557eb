//! crmbench: a query performance advisor and benchmark harness for PostgreSQL,
//! built around a multi-tenant jewellery CRM under row-level security.
//!
//! The pipeline (data flows one way; stages talk through files in a run folder):
//!
//! ```text
//! schema ──► generate ──► run ──► explain ──► advise ──► report
//!  (DDL,      (skewed      (replay,  (EXPLAIN    (what-if      (md, html,
//!   RLS)       data,        HDR      ANALYZE,    with HypoPG,   json, SVG
//!              COPY)        latency) findings)   selection,     plots)
//!                                                paired verify)
//!                           run ──► compare (the CI gate: files in, verdict out)
//! ```
//!
//! Modules, one line each:
//! - [`cli`]: the command line (clap), mapping each command to its stage; the only module that knows clap.
//! - [`demo`]: every stage end to end into one run folder, and the findings to read first.
//! - [`pg`]: PostgreSQL plumbing: binaries, the private server and its `pg` commands, targets, connections, roles.
//! - [`schema`]: the CRM's DDL and row-level security, its table list, and catalog checks of the tenant rules.
//! - [`generate`]: the deterministic, skewed multi-tenant dataset, loaded with binary COPY.
//! - [`workload`]: workload files (TOML): queries, parameter generators, the tenant context, validation.
//! - [`run`]: the load driver: replays a workload, records HDR latencies, runs paired A/B.
//! - [`stats`]: latency histograms in µs: record, merge, summarize, encode.
//! - [`explain`]: executed plans per query under RLS, their fingerprints and findings (`plans.json`).
//! - [`advise`]: index candidates, what-if costing, selection, drop advice, paired verification, DDL.
//! - [`rehearse`]: a migration rehearsed on clones under the workload: locks, blocked transactions, rules that know table sizes.
//! - [`report`]: a run folder's files to HTML, Markdown and JSON reports, never a database.
//! - [`console`]: terminal output that ends quietly when the reader has gone, never a panic.
//! - [`compare`]: the CI regression gate over results files, with exit codes.
//! - [`distribute`]: ready for Citus: the distribution SQL, the tenant hash, tenant placement on N nodes.
//! - [`merge`]: worker folders of one run over several machines added up exactly into one results.json.
//! - [`results`]: `results.json`, the typed contract between `run` and the stages that read it.
//! - [`runfolder`]: the run folder every stage reads from and writes into.
//! - [`sql`]: SQL read by PostgreSQL's own parser (`pg_query`): parse, split a script, find `$n`.
//! - [`signals`]: SIGINT, SIGTERM and SIGHUP as one stop request every long stage heeds.
//! - [`error`]: the library's error kinds, each with what to do about it.
//! - [`rng`]: the seeded random streams every stage derives its values from.

pub mod advise;
pub mod audit;
pub mod capture;
pub mod cli;
pub mod compare;
pub mod console;
pub mod demo;
pub mod distribute;
pub mod erase;
pub mod error;
pub mod explain;
pub mod generate;
pub mod merge;
pub mod pg;
pub mod prisma;
pub mod rehearse;
pub mod report;
pub mod results;
pub mod rng;
pub mod run;
pub mod runfolder;
pub mod schema;
pub mod signals;
pub mod sql;
pub mod stats;
pub mod workload;

pub use error::{Error, Result};
