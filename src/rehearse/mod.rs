//! `rehearse`: a migration rehearsed against clones of the database under
//! the real workload — the locks each statement takes, the transactions it
//! blocks, the latency users would feel, the state after and the rollback
//! proven — and static rules that know the real table sizes.
//!
//! One file per concern: [`input`] reads the migration (files, folders,
//! Prisma), [`rules`] checks it statically, [`locks`] names lock modes and
//! their conflicts.

pub mod input;
pub mod locks;
pub mod rules;
