//! Table lock modes as PostgreSQL names them, with the conflict table the
//! server uses: which lock a migration statement takes decides whether the
//! workload's reads and writes queue behind it.

use serde::{Deserialize, Serialize};

/// One of PostgreSQL's eight table lock modes, weakest first (the order of
/// `lockdefs.h`, so `LOCK TABLE`'s numeric mode maps directly).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum LockMode {
    /// Plain `SELECT`.
    AccessShare,
    /// `SELECT … FOR UPDATE/SHARE`.
    RowShare,
    /// `INSERT`, `UPDATE`, `DELETE`.
    RowExclusive,
    /// `CREATE INDEX CONCURRENTLY`, `VALIDATE CONSTRAINT`, `ANALYZE`.
    ShareUpdateExclusive,
    /// `CREATE INDEX` (without `CONCURRENTLY`).
    Share,
    /// `ADD FOREIGN KEY`, `CREATE TRIGGER`.
    ShareRowExclusive,
    /// `REFRESH MATERIALIZED VIEW CONCURRENTLY`.
    Exclusive,
    /// Most `ALTER TABLE` forms, `DROP`, `TRUNCATE`, `VACUUM FULL`.
    AccessExclusive,
}

impl LockMode {
    /// The name `pg_locks.mode` shows, e.g. `ShareLock`.
    pub fn pg_name(self) -> &'static str {
        match self {
            LockMode::AccessShare => "AccessShareLock",
            LockMode::RowShare => "RowShareLock",
            LockMode::RowExclusive => "RowExclusiveLock",
            LockMode::ShareUpdateExclusive => "ShareUpdateExclusiveLock",
            LockMode::Share => "ShareLock",
            LockMode::ShareRowExclusive => "ShareRowExclusiveLock",
            LockMode::Exclusive => "ExclusiveLock",
            LockMode::AccessExclusive => "AccessExclusiveLock",
        }
    }

    /// The name as SQL writes it, e.g. `SHARE ROW EXCLUSIVE`.
    pub fn sql_name(self) -> &'static str {
        match self {
            LockMode::AccessShare => "ACCESS SHARE",
            LockMode::RowShare => "ROW SHARE",
            LockMode::RowExclusive => "ROW EXCLUSIVE",
            LockMode::ShareUpdateExclusive => "SHARE UPDATE EXCLUSIVE",
            LockMode::Share => "SHARE",
            LockMode::ShareRowExclusive => "SHARE ROW EXCLUSIVE",
            LockMode::Exclusive => "EXCLUSIVE",
            LockMode::AccessExclusive => "ACCESS EXCLUSIVE",
        }
    }

    /// The mode `pg_locks.mode` names, if it is a table lock mode.
    pub fn from_pg_name(name: &str) -> Option<LockMode> {
        ALL.iter().copied().find(|m| m.pg_name() == name)
    }

    /// `LOCK TABLE`'s mode number as the parser stores it (1 = ACCESS SHARE).
    pub fn from_number(n: i32) -> Option<LockMode> {
        usize::try_from(n - 1)
            .ok()
            .and_then(|i| ALL.get(i).copied())
    }

    /// Whether the two modes conflict (the server's table, `lock.c`).
    pub fn conflicts_with(self, other: LockMode) -> bool {
        CONFLICTS[self as usize] & (1 << other as usize) != 0
    }

    /// Whether the workload's writes (`ROW EXCLUSIVE`) queue behind this lock.
    pub fn blocks_writes(self) -> bool {
        self.conflicts_with(LockMode::RowExclusive)
    }

    /// Whether the workload's plain reads (`ACCESS SHARE`) queue behind it.
    pub fn blocks_reads(self) -> bool {
        self.conflicts_with(LockMode::AccessShare)
    }
}

/// The server's conflict table (`lock.c`'s `LockConflicts`), one row per
/// mode weakest first: bit `i` set when the row's mode conflicts with the
/// mode at position `i` of [`ALL`] (bit 0 = ACCESS SHARE).
const CONFLICTS: [u8; 8] = [
    0b1000_0000, // ACCESS SHARE: ACCESS EXCLUSIVE
    0b1100_0000, // ROW SHARE: EXCLUSIVE and up
    0b1111_0000, // ROW EXCLUSIVE: SHARE and up
    0b1111_1000, // SHARE UPDATE EXCLUSIVE: itself and up
    0b1110_1100, // SHARE: ROW EXCLUSIVE, SHARE UPDATE EXCLUSIVE, SHARE ROW EXCLUSIVE and up
    0b1111_1100, // SHARE ROW EXCLUSIVE: ROW EXCLUSIVE and up
    0b1111_1110, // EXCLUSIVE: ROW SHARE and up
    0b1111_1111, // ACCESS EXCLUSIVE: every mode
];

const ALL: [LockMode; 8] = [
    LockMode::AccessShare,
    LockMode::RowShare,
    LockMode::RowExclusive,
    LockMode::ShareUpdateExclusive,
    LockMode::Share,
    LockMode::ShareRowExclusive,
    LockMode::Exclusive,
    LockMode::AccessExclusive,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflict_table_is_symmetric() {
        for a in ALL {
            for b in ALL {
                assert_eq!(a.conflicts_with(b), b.conflicts_with(a), "{a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn index_build_blocks_writes_not_reads_and_concurrently_blocks_neither() {
        assert!(LockMode::Share.blocks_writes());
        assert!(!LockMode::Share.blocks_reads());
        assert!(!LockMode::ShareUpdateExclusive.blocks_writes());
        assert!(LockMode::AccessExclusive.blocks_reads());
    }

    #[test]
    fn conflict_table_matches_the_documented_pairs() {
        use LockMode::*;
        // Each mode's count of conflicting modes, from the PostgreSQL manual's table.
        let counts: Vec<usize> = ALL
            .iter()
            .map(|a| ALL.iter().filter(|b| a.conflicts_with(**b)).count())
            .collect();
        assert_eq!(counts, [1, 2, 4, 5, 5, 6, 7, 8]);
        assert!(!Share.conflicts_with(Share));
        assert!(ShareUpdateExclusive.conflicts_with(ShareUpdateExclusive));
        assert!(!RowExclusive.conflicts_with(RowExclusive));
        assert!(RowShare.conflicts_with(Exclusive));
    }

    #[test]
    fn names_round_trip() {
        assert_eq!(LockMode::from_number(5), Some(LockMode::Share));
        assert_eq!(LockMode::from_number(0), None);
        for m in ALL {
            assert_eq!(LockMode::from_pg_name(m.pg_name()), Some(m));
        }
    }
}
