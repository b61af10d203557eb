//! PostgreSQL's binary COPY format, written straight into large chunks.
//!
//! `BinaryCopyInWriter` checks every value's type, takes the row as a vector
//! of trait objects and hands the connection a message every 4 kB; at a
//! million rows a second those costs are a visible share of the client's CPU,
//! which on a small machine is taken from the server being loaded. Here each
//! row's fields are encoded by their concrete types (checked on the first row
//! only: a row struct's field types never change) into chunks of
//! [`CHUNK`] bytes.

use std::any::Any;

use bytes::{BufMut, Bytes, BytesMut};
use rust_decimal::Decimal;
use tokio_postgres::types::{IsNull, ToSql, Type};

use super::rows::TableSpec;
use crate::error::{Error, Result};

/// Bytes per CopyData message: large enough that messages, wake-ups and
/// socket writes stop showing in a profile, small enough to stream.
pub const CHUNK: usize = 256 * 1024;

const MAGIC: &[u8] = b"PGCOPY\n\xff\r\n\0";

/// Encodes rows of one table into binary COPY chunks.
pub struct CopyEncoder {
    spec: TableSpec,
    buf: BytesMut,
    /// Index of the next field of the current row.
    next: usize,
    /// Whether the first row passed the type checks.
    checked: bool,
}

impl CopyEncoder {
    /// An encoder for `spec`'s columns, with the format's header written.
    pub fn new(spec: TableSpec) -> Self {
        let mut buf = BytesMut::with_capacity(CHUNK + CHUNK / 4);
        buf.put_slice(MAGIC);
        buf.put_i32(0); // flags
        buf.put_i32(0); // header extension length
        CopyEncoder {
            spec,
            buf,
            next: 0,
            checked: false,
        }
    }

    /// Starts a row.
    pub fn begin_row(&mut self) {
        self.buf.put_i16(self.spec.columns.len() as i16);
        self.next = 0;
    }

    /// Appends the next field of the current row.
    pub fn field<T: ToSql + 'static>(&mut self, value: &T) -> Result<()> {
        let Some((column, ty)) = self.spec.columns.get(self.next) else {
            return Err(self.shape_error(self.next + 1));
        };
        let at = self.buf.len();
        // Money and measures: rust_decimal's encoder divides a 96-bit
        // mantissa group by group (a tenth of the loader's CPU in a profile);
        // once the first row has checked the type, cents and the like are
        // written from an i64. The type test is on `T`, so it compiles away.
        let decimal = (value as &dyn Any).downcast_ref::<Decimal>().or_else(|| {
            (value as &dyn Any)
                .downcast_ref::<Option<Decimal>>()
                .and_then(Option::as_ref)
        });
        if let Some(d) = decimal.filter(|_| self.checked) {
            self.buf.put_i32(0);
            if put_numeric(&mut self.buf, d) {
                let len = (self.buf.len() - at - 4) as i32;
                self.buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
                self.next += 1;
                return Ok(());
            }
            self.buf.truncate(at);
        }
        self.buf.put_i32(0);
        let encoded = if self.checked {
            value.to_sql(ty, &mut self.buf)
        } else {
            value.to_sql_checked(ty, &mut self.buf)
        };
        let len = match encoded.map_err(|e| self.value_error(column, ty, &*e))? {
            IsNull::Yes => -1,
            IsNull::No => i32::try_from(self.buf.len() - at - 4).map_err(|_| {
                self.value_error(
                    column,
                    ty,
                    &"value longer than 2 GB" as &dyn std::fmt::Display,
                )
            })?,
        };
        self.buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
        self.next += 1;
        Ok(())
    }

    /// Ends the current row; every column must have had its field.
    pub fn end_row(&mut self) -> Result<()> {
        if self.next != self.spec.columns.len() {
            return Err(self.shape_error(self.next));
        }
        self.checked = true;
        Ok(())
    }

    /// Whether a full chunk is ready for [`CopyEncoder::take`].
    pub fn full(&self) -> bool {
        self.buf.len() >= CHUNK
    }

    /// The bytes encoded so far, leaving the buffer empty (its capacity is
    /// reused once the connection has sent the chunk).
    pub fn take(&mut self) -> Bytes {
        self.buf.split().freeze()
    }

    /// The format's trailer and whatever was not taken yet.
    pub fn finish(mut self) -> Bytes {
        self.buf.put_i16(-1);
        self.take()
    }

    fn shape_error(&self, fields: usize) -> Error {
        Error::Internal {
            message: format!(
                "the row generator of crm.{} wrote {} fields where its COPY spec has {} columns",
                self.spec.name,
                fields,
                self.spec.columns.len()
            ),
            fix: String::new(),
        }
    }

    fn value_error(&self, column: &str, ty: &Type, e: &dyn std::fmt::Display) -> Error {
        Error::Internal {
            message: format!(
                "encoding crm.{}.{column} as {ty} for COPY: {e}",
                self.spec.name
            ),
            fix: String::new(),
        }
    }
}

/// Writes `d` in `numeric`'s binary form (digit count, weight in base-10,000
/// digits, sign, display scale, digits), as the server's `numeric_send`
/// does; false (nothing written) for a value beyond an i64 mantissa or a
/// scale over 15, which the caller hands to rust_decimal's encoder.
fn put_numeric(buf: &mut BytesMut, d: &Decimal) -> bool {
    let scale = d.scale();
    let Ok(mantissa) = i64::try_from(d.mantissa()) else {
        return false;
    };
    if scale > 15 {
        return false;
    }
    let v = mantissa.unsigned_abs();
    let pow = 10u64.pow(scale);
    let (mut int, frac) = (v / pow, v % pow);
    let frac_groups = scale.div_ceil(4) as usize;
    // The fraction's digits left-aligned in whole base-10,000 groups.
    let mut frac = frac * 10u64.pow(frac_groups as u32 * 4 - scale);
    // At most 5 integer groups (u64 < 10^20) and 4 fraction groups.
    let mut digits = [0u16; 9];
    let mut int_groups = 0;
    while int > 0 {
        int_groups += 1;
        digits[5 - int_groups] = (int % 10_000) as u16;
        int /= 10_000;
    }
    for g in (0..frac_groups).rev() {
        digits[5 + g] = (frac % 10_000) as u16;
        frac /= 10_000;
    }
    let (mut start, mut end) = (5 - int_groups, 5 + frac_groups);
    let mut weight = int_groups as i16 - 1;
    while start < end && digits[start] == 0 {
        start += 1;
        weight -= 1;
    }
    while end > start && digits[end - 1] == 0 {
        end -= 1;
    }
    if start == end {
        weight = 0; // zero: no digits, as the server writes it
    }
    buf.put_i16((end - start) as i16);
    buf.put_i16(weight);
    buf.put_u16(if mantissa < 0 && start < end {
        0x4000
    } else {
        0
    });
    buf.put_i16(scale as i16);
    for g in &digits[start..end] {
        buf.put_u16(*g);
    }
    true
}

/// JSON already written as text, sent as it is: a generator with a fixed
/// document (an audit row's `changes`) builds no `serde_json::Value` per row.
/// `jsonb`'s binary format is a version byte and the text; the server parses
/// and normalises it as it would the serialised value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonText(pub &'static str);

impl ToSql for JsonText {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        if *ty == Type::JSONB {
            out.put_u8(1);
        }
        out.put_slice(self.0.as_bytes());
        Ok(IsNull::No)
    }

    tokio_postgres::types::accepts!(JSON, JSONB);
    tokio_postgres::types::to_sql_checked!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_postgres::types::Type;

    const SPEC: TableSpec = TableSpec {
        name: "t",
        columns: &[("a", Type::INT8), ("b", Type::TEXT), ("c", Type::JSONB)],
    };

    /// The bytes `psql \copy … TO (FORMAT binary)` writes for the same rows.
    fn expected() -> Vec<u8> {
        let mut v = MAGIC.to_vec();
        v.extend([0, 0, 0, 0, 0, 0, 0, 0]);
        // Row 1: 7, 'hi', '{"x": 1}'.
        v.extend([
            0, 3, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 2, b'h', b'i',
        ]);
        v.extend([0, 0, 0, 9, 1]);
        v.extend(br#"{"x": 1}"#);
        // Row 2: NULL, '', '{}'.
        v.extend([
            0, 3, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 3, 1, b'{', b'}',
        ]);
        v.extend([0xff, 0xff]);
        v
    }

    #[test]
    fn rows_are_the_binary_copy_format() {
        let mut out = CopyEncoder::new(SPEC);
        out.begin_row();
        out.field(&7i64).unwrap();
        out.field(&"hi").unwrap();
        out.field(&JsonText(r#"{"x": 1}"#)).unwrap();
        out.end_row().unwrap();
        out.begin_row();
        out.field(&None::<i64>).unwrap();
        out.field(&"").unwrap();
        out.field(&JsonText("{}")).unwrap();
        out.end_row().unwrap();
        let mut bytes = out.take().to_vec();
        bytes.extend(out.finish());
        assert_eq!(bytes, expected());
    }

    #[test]
    fn numerics_decode_to_the_value_written() {
        use tokio_postgres::types::FromSql;
        let mut values = vec![
            Decimal::ZERO,
            Decimal::new(0, 2),
            Decimal::new(1, 2),
            Decimal::new(-1, 2),
            Decimal::new(100, 2),
            Decimal::new(123_456_789, 2),
            Decimal::new(-99_990_000, 2),
            Decimal::new(45, 1),
            Decimal::new(1_0000_0000, 0),
            Decimal::new(12_345, 5),
            Decimal::new(i64::MAX, 15),
            Decimal::new(i64::MIN + 1, 3),
        ];
        let mut r = crate::rng::Prng::for_parts(&[7]);
        for i in 0..10_000u64 {
            let m = (crate::rng::mix(i) >> (1 + r.below(62))) as i64;
            let m = if r.chance(0.3) { -m } else { m };
            values.push(Decimal::new(m, r.below(16) as u32));
        }
        for d in values {
            let mut fast = BytesMut::new();
            assert!(put_numeric(&mut fast, &d), "{d}");
            let back = Decimal::from_sql(&Type::NUMERIC, &fast).unwrap();
            assert_eq!(back, d, "{d}");
            assert_eq!(back.scale(), d.scale(), "display scale of {d}");
            // The same bytes as rust_decimal's own encoder, where it strips
            // zero groups as the server does.
            let mut slow = BytesMut::new();
            d.to_sql(&Type::NUMERIC, &mut slow).unwrap();
            assert_eq!(Decimal::from_sql(&Type::NUMERIC, &slow).unwrap(), d);
        }
        assert!(!put_numeric(&mut BytesMut::new(), &Decimal::MAX));
    }

    #[test]
    fn a_wrong_type_or_count_is_an_error_naming_the_column() {
        let mut out = CopyEncoder::new(SPEC);
        out.begin_row();
        let e = out.field(&"not a number").unwrap_err().to_string();
        assert!(e.contains("crm.t.a") && e.contains("int8"), "{e}");
        let mut out = CopyEncoder::new(SPEC);
        out.begin_row();
        out.field(&1i64).unwrap();
        let e = out.end_row().unwrap_err().to_string();
        assert!(e.contains("crm.t") && e.contains("3 columns"), "{e}");
    }
}
