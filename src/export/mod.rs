//! `crmbench export`: a customer's or a tenant's rows written out with a
//! manifest of counts and checksums.

pub mod checksum;
