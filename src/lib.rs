//! crmbench: a query performance advisor and benchmark harness for PostgreSQL,
//! built around a multi-tenant jewellery CRM under row-level security.
//!
//! The pipeline (data flows one way; stages talk through files in a run folder):
//!
//! ```text
//! schema ──► generate ──► run ──► explain ──► advise ──► verify ──► report
//!  (DDL,      (fake,       (work-   (EXPLAIN    (what-if    (apply each   (md, html,
//!   RLS)       skewed,      load     ANALYZE    with        index for     svg plots,
//!              COPY)        replay,  JSON,      HypoPG,     real, replay, json, DDL)
//!                           HDR      findings)  selection)  HDR before/
//!                           hist.)                           after)
//! ```
//!
//! Modules: [`pg`] (private server, targets, connections, roles), [`schema`]
//! (the CRM DDL and its checks), [`error`] (the error kinds), [`cli`] (the
//! command line; the only module that knows clap).

pub mod advise;
pub mod cli;
pub mod compare;
pub mod demo;
pub mod error;
pub mod explain;
pub mod generate;
pub mod pg;
pub mod report;
pub mod results;
pub mod rng;
pub mod run;
pub mod runfolder;
pub mod schema;
pub mod stats;
pub mod workload;

pub use error::{Error, Result};
