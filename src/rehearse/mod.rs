//! `rehearse`: a migration rehearsed against clones of the database under
//! the real workload — the locks each statement takes, the transactions it
//! blocks, the latency users would feel, the state after and the rollback
//! proven — and static rules that know the real table sizes.
//!
//! One file per concern: [`input`] reads the migration (files, folders,
//! Prisma), [`rules`] checks it statically, [`locks`] names lock modes and
//! their conflicts, [`step`] applies units under load (the reusable entry:
//! a before/after pair of clones, a load, an apply step), [`state`] judges
//! the migrated clone against the before clone, [`data`] runs the checks on
//! a quiesced clone.

pub mod apply;
pub mod data;
pub mod engine;
pub mod fingerprint;
pub mod input;
pub mod locks;
pub mod model;
pub mod rules;
pub mod sampler;
pub mod state;
pub mod step;
pub mod timeline;

pub use engine::{Load, RehearseOptions, RehearseOutcome, rehearse};
pub mod render;
pub mod retention;
