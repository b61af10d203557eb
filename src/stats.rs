//! Latency histograms in microseconds (HdrHistogram, 3 significant digits,
//! 1 µs to 1 hour): record, merge, summarize, and encode as base64 of the
//! compressed V2 format any HdrHistogram library can read and merge.

use base64::Engine as _;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use serde::{Deserialize, Serialize};

/// Highest trackable latency, µs (one hour).
pub const MAX_MICROS: u64 = 3_600_000_000;

/// A latency histogram in µs.
pub type Hist = Histogram<u64>;

/// An empty histogram with crmbench's bounds.
pub fn new_hist() -> Hist {
    // Constant bounds that hdrhistogram accepts: this cannot fail.
    Histogram::new_with_bounds(1, MAX_MICROS, 3).expect("valid constant histogram bounds")
}

/// Record one latency (clamped into the trackable range).
pub fn record(h: &mut Hist, micros: u64) {
    let _ = h.record(micros.clamp(1, MAX_MICROS));
}

/// Add `from` into `into` (exact: same bounds).
pub fn merge(into: &mut Hist, from: &Hist) {
    let _ = into.add(from);
}

/// Base64 of the compressed V2 encoding.
pub fn encode(h: &Hist) -> String {
    let mut buf = Vec::new();
    if V2DeflateSerializer::new().serialize(h, &mut buf).is_err() {
        return String::new();
    }
    base64::engine::general_purpose::STANDARD.encode(buf)
}

/// Decode [`encode`]'s output (or the uncompressed V2 encoding). Every
/// length the bytes claim is checked against the bytes themselves and
/// against the largest histogram crmbench writes before anything is
/// allocated, so a damaged or hostile file costs memory in proportion to its
/// size, never what its header says.
pub fn decode(text: &str) -> Result<Hist, String> {
    if text.is_empty() {
        return Ok(new_hist());
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| format!("histogram is not base64: {e}"))?;
    let plain = match read_u32(&bytes, 0) {
        Some(V2_COMPRESSED_COOKIE) => inflate(&bytes)?,
        Some(V2_COOKIE) => bytes,
        _ => return Err("histogram is not an HdrHistogram V2 encoding".into()),
    };
    check_v2(&plain)?;
    Deserializer::new()
        .deserialize(&mut plain.as_slice())
        .map_err(|e| format!("histogram does not decode: {e:?}"))
}

// The V2 format (HdrHistogram's, big-endian): cookie, payload length,
// normalizing offset, significant digits, lowest and highest trackable value,
// integer-to-double ratio, then the counts as zig-zag LEB128 varints (a
// negative number is a run of empty buckets). The compressed form is a
// cookie, a length, and the zlib-deflated V2 bytes.
const V2_COOKIE: u32 = 0x1c84_9303 | 0x10;
const V2_COMPRESSED_COOKIE: u32 = 0x1c84_9304 | 0x10;
const V2_HEADER: usize = 40;
/// Longest varint of the counts.
const MAX_VARINT: usize = 9;
/// Most samples one histogram may hold (2^53, exact in an f64): far beyond
/// any run, and low enough that merging thousands never overflows a u64.
const MAX_COUNT: u64 = 1 << 53;

fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at + 4)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

fn read_u64(bytes: &[u8], at: usize) -> Option<u64> {
    let b: [u8; 8] = bytes.get(at..at + 8)?.try_into().ok()?;
    Some(u64::from_be_bytes(b))
}

/// Longest V2 encoding of a crmbench histogram: the header and one longest
/// varint per bucket.
fn max_plain_len() -> usize {
    V2_HEADER + new_hist().distinct_values() * MAX_VARINT
}

/// The V2 bytes inside a compressed encoding (cookie, length, deflated
/// bytes): the claimed length must be present, and inflating stops past
/// [`max_plain_len`].
fn inflate(bytes: &[u8]) -> Result<Vec<u8>, String> {
    use std::io::Read as _;
    let claimed = read_u32(bytes, 4).ok_or("histogram is truncated (no length)")? as usize;
    let rest = bytes.get(8..).unwrap_or_default();
    let deflated = rest.get(..claimed).ok_or_else(|| {
        format!(
            "histogram is truncated: its header claims {claimed} bytes, {} follow",
            rest.len()
        )
    })?;
    let limit = max_plain_len();
    let mut plain = Vec::new();
    flate2::read::ZlibDecoder::new(deflated)
        .take(limit as u64 + 1)
        .read_to_end(&mut plain)
        .map_err(|e| format!("histogram does not inflate: {e}"))?;
    if plain.len() > limit {
        return Err(format!(
            "histogram inflates to more than the {limit} bytes a crmbench histogram can take"
        ));
    }
    Ok(plain)
}

/// Check a V2 encoding before hdrhistogram allocates for it: crmbench's
/// bounds (so the counts array is ours), a payload no longer than the bytes
/// that hold it, and counts hdrhistogram can sum without overflow.
fn check_v2(plain: &[u8]) -> Result<(), String> {
    let header = |at| read_u32(plain, at).ok_or("histogram is truncated (header)");
    let payload_len = header(4)? as usize;
    let digits = header(12)?;
    let (low, high) = read_u64(plain, 16)
        .zip(read_u64(plain, 24))
        .ok_or("histogram is truncated (header)")?;
    if (low, high, digits) != (1, MAX_MICROS, 3) {
        return Err(format!(
            "histogram tracks {low}..{high} µs at {digits} digits; crmbench writes \
             1..{MAX_MICROS} at 3"
        ));
    }
    let payload = plain
        .get(V2_HEADER..)
        .and_then(|p| p.get(..payload_len))
        .ok_or_else(|| {
            format!(
                "histogram is truncated: its header claims {payload_len} bytes of counts, {} \
                 follow",
                plain.len().saturating_sub(V2_HEADER)
            )
        })?;
    check_counts(payload)
}

/// Walk the counts' varints: the one value hdrhistogram cannot negate
/// (i64::MIN) and a total beyond [`MAX_COUNT`] are refused.
fn check_counts(mut payload: &[u8]) -> Result<(), String> {
    let mut total: u64 = 0;
    while !payload.is_empty() {
        let mut raw: u64 = 0;
        let mut used = 0;
        for (i, &b) in payload.iter().take(MAX_VARINT).enumerate() {
            used = i + 1;
            if i == MAX_VARINT - 1 {
                // The ninth byte is taken whole.
                raw |= u64::from(b) << 56;
                break;
            }
            raw |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                break;
            }
        }
        payload = &payload[used..];
        // Zig-zag: the low bit is the sign.
        if raw & 1 == 0 {
            total = total.saturating_add(raw >> 1);
            if total > MAX_COUNT {
                return Err(format!("histogram holds more than {MAX_COUNT} samples"));
            }
        } else if raw == u64::MAX {
            return Err("histogram counts are damaged".into());
        }
    }
    Ok(())
}

/// Percentiles of a histogram, µs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Samples.
    pub count: u64,
    /// Mean.
    pub mean_us: f64,
    /// Median.
    pub p50_us: u64,
    /// 90th percentile.
    pub p90_us: u64,
    /// 95th percentile.
    pub p95_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// 99.9th percentile.
    pub p999_us: u64,
    /// Largest.
    pub max_us: u64,
}

/// Summarize a histogram.
pub fn summarize(h: &Hist) -> Summary {
    if h.is_empty() {
        return Summary::default();
    }
    Summary {
        count: h.len(),
        mean_us: h.mean(),
        p50_us: h.value_at_quantile(0.50),
        p90_us: h.value_at_quantile(0.90),
        p95_us: h.value_at_quantile(0.95),
        p99_us: h.value_at_quantile(0.99),
        p999_us: h.value_at_quantile(0.999),
        max_us: h.max(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Prng;

    #[test]
    fn merge_equals_histogram_of_the_union() {
        let mut rng = Prng::for_parts(&[9]);
        let (mut a, mut b, mut union) = (new_hist(), new_hist(), new_hist());
        for i in 0..50_000u64 {
            let v = 50 + rng.below(if i % 97 == 0 { 2_000_000 } else { 5_000 });
            if i % 3 == 0 {
                record(&mut a, v);
            } else {
                record(&mut b, v);
            }
            record(&mut union, v);
        }
        merge(&mut a, &b);
        assert_eq!(summarize(&a), summarize(&union));
        assert_eq!(a, union);
    }

    #[test]
    fn encoding_round_trips() {
        let mut h = new_hist();
        for v in [1, 10, 100, 1_000, 10_000, 123_456, MAX_MICROS + 5] {
            record(&mut h, v);
        }
        let back = decode(&encode(&h)).unwrap();
        assert_eq!(back, h);
        assert_eq!(summarize(&back).max_us, h.max());
        assert!(decode("not base64!").is_err());
    }

    /// The V2 header of a crmbench histogram claiming `payload_len` bytes.
    fn header(payload_len: u32, digits: u32, high: u64) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend(V2_COOKIE.to_be_bytes());
        b.extend(payload_len.to_be_bytes());
        b.extend(0u32.to_be_bytes());
        b.extend(digits.to_be_bytes());
        b.extend(1u64.to_be_bytes());
        b.extend(high.to_be_bytes());
        b.extend(1.0f64.to_be_bytes());
        b
    }

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    #[test]
    fn claimed_lengths_are_bounded_by_the_bytes_present() {
        let e = decode(&b64(&header(u32::MAX, 3, MAX_MICROS))).unwrap_err();
        assert!(e.contains("truncated"), "{e}");
        let mut compressed = V2_COMPRESSED_COOKIE.to_be_bytes().to_vec();
        compressed.extend(u32::MAX.to_be_bytes());
        compressed.extend([0x78, 0x9c, 0, 0]);
        let e = decode(&b64(&compressed)).unwrap_err();
        assert!(e.contains("truncated"), "{e}");
    }

    #[test]
    fn other_bounds_are_refused_before_allocating_their_counts() {
        // Five digits up to 2^62 would be a counts array of ~50 MB.
        let e = decode(&b64(&header(0, 5, 1 << 62))).unwrap_err();
        assert!(e.contains("crmbench writes"), "{e}");
    }

    #[test]
    fn counts_hdrhistogram_would_overflow_on_are_refused() {
        // The varint of u64::MAX zig-zags to i64::MIN, which hdrhistogram negates.
        let mut min = header(9, 3, MAX_MICROS);
        min.extend([0xff; 9]);
        assert!(decode(&b64(&min)).is_err());
        // Two counts of 2^62 each: more samples than any run.
        let mut huge = header(18, 3, MAX_MICROS);
        for _ in 0..2 {
            huge.extend([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80]);
        }
        let e = decode(&b64(&huge)).unwrap_err();
        assert!(e.contains("more than"), "{e}");
    }
}
