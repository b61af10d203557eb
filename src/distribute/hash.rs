//! How Citus finds a tenant's shard: the distribution column's PostgreSQL
//! hash function (for a uuid, `uuid_hash`: Bob Jenkins' lookup3 over the 16
//! bytes, PostgreSQL's `hash_bytes`), then the shard whose slice of the
//! int32 hash space holds the value (a hash-distributed table with S shards
//! splits [-2^31, 2^31) into S equal ranges, the last taking the remainder).
//! The integration tests hold [`hash_bytes`] to the server's own
//! `uuid_hash()` and `hashtext()`.

/// PostgreSQL's `hash_bytes` (lookup3, little-endian word reads), as the
/// server computes it on x86-64 and ARM.
pub fn hash_bytes(key: &[u8]) -> u32 {
    let init = 0x9e37_79b9_u32
        .wrapping_add(key.len() as u32)
        .wrapping_add(3_923_095);
    let (mut a, mut b, mut c) = (init, init, init);
    let mut rest = key;
    while rest.len() >= 12 {
        a = a.wrapping_add(word(&rest[0..4]));
        b = b.wrapping_add(word(&rest[4..8]));
        c = c.wrapping_add(word(&rest[8..12]));
        mix(&mut a, &mut b, &mut c);
        rest = &rest[12..];
    }
    // The tail: bytes 0..4 into a, 4..8 into b, 8..11 into c shifted up one
    // byte (c's low byte is lookup3's reserved one).
    a = a.wrapping_add(word(&rest[..rest.len().min(4)]));
    if rest.len() > 4 {
        b = b.wrapping_add(word(&rest[4..rest.len().min(8)]));
    }
    if rest.len() > 8 {
        c = c.wrapping_add(word(&rest[8..]) << 8);
    }
    finish(&mut a, &mut b, &mut c);
    c
}

/// Up to 4 bytes as a little-endian word.
fn word(bytes: &[u8]) -> u32 {
    bytes
        .iter()
        .enumerate()
        .fold(0, |w, (i, &byte)| w | (u32::from(byte) << (8 * i)))
}

fn mix(a: &mut u32, b: &mut u32, c: &mut u32) {
    *a = a.wrapping_sub(*c) ^ c.rotate_left(4);
    *c = c.wrapping_add(*b);
    *b = b.wrapping_sub(*a) ^ a.rotate_left(6);
    *a = a.wrapping_add(*c);
    *c = c.wrapping_sub(*b) ^ b.rotate_left(8);
    *b = b.wrapping_add(*a);
    *a = a.wrapping_sub(*c) ^ c.rotate_left(16);
    *c = c.wrapping_add(*b);
    *b = b.wrapping_sub(*a) ^ a.rotate_left(19);
    *a = a.wrapping_add(*c);
    *c = c.wrapping_sub(*b) ^ b.rotate_left(4);
    *b = b.wrapping_add(*a);
}

fn finish(a: &mut u32, b: &mut u32, c: &mut u32) {
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(14));
    *a ^= *c;
    *a = a.wrapping_sub(c.rotate_left(11));
    *b ^= *a;
    *b = b.wrapping_sub(a.rotate_left(25));
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(16));
    *a ^= *c;
    *a = a.wrapping_sub(c.rotate_left(4));
    *b ^= *a;
    *b = b.wrapping_sub(a.rotate_left(14));
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(24));
}

/// `uuid_hash(id)` as the server returns it (an int4).
pub fn uuid_hash(id: &uuid::Uuid) -> i32 {
    hash_bytes(id.as_bytes()) as i32
}

/// The shard (0-based, in shard-id order) of a hash value among `shards`
/// uniform ranges of the int32 space.
pub fn shard_of(hash: i32, shards: u32) -> u32 {
    let shards = shards.max(1);
    let increment = (1u64 << 32) / u64::from(shards);
    let offset = (i64::from(hash) - i64::from(i32::MIN)) as u64;
    ((offset / increment) as u32).min(shards - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_split_the_int32_space_evenly() {
        assert_eq!(shard_of(i32::MIN, 32), 0);
        assert_eq!(shard_of(i32::MAX, 32), 31);
        assert_eq!(shard_of(-1, 2), 0);
        assert_eq!(shard_of(0, 2), 1);
        // 3 does not divide 2^32: the last shard takes the remainder.
        assert_eq!(shard_of(i32::MAX, 3), 2);
        assert_eq!(shard_of(7, 1), 0);
    }

    #[test]
    fn every_tail_length_hashes_differently() {
        let bytes: Vec<u8> = (0u8..40).collect();
        let hashes: std::collections::BTreeSet<u32> =
            (0..=40).map(|n| hash_bytes(&bytes[..n])).collect();
        assert_eq!(hashes.len(), 41);
    }
}
