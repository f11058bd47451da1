//! RFC 3339 timestamps without a date crate: UTC only, as Docker and the OCI tools print them.

use std::time::{SystemTime, UNIX_EPOCH};

/// Formats seconds and nanoseconds since the epoch as `2026-11-29T03:04:05.123456789Z`.
pub fn rfc3339_nanos(secs: i64, nanos: u32) -> String {
    let (y, mo, d, h, mi, s) = civil(secs);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{nanos:09}Z")
}

/// The current time as RFC 3339 with nanoseconds.
pub fn now_rfc3339() -> String {
    let t = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    rfc3339_nanos(i64::try_from(t.as_secs()).unwrap_or(i64::MAX), t.subsec_nanos())
}

/// Days since 1970-01-01 of a proleptic Gregorian date (the inverse of [`civil`]), after
/// H. Hinnant's published algorithm.
pub fn days_from_civil(y: i64, mo: i64, d: i64) -> i64 {
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Splits epoch seconds into UTC (year, month, day, hour, minute, second).
fn civil(secs: i64) -> (i64, u32, u32, u32, u32, u32) {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Days-to-civil conversion (proleptic Gregorian), after H. Hinnant's published algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let part = |v: i64| u32::try_from(v).unwrap_or(0);
    (y, part(m), part(d), part(rem / 3600), part(rem % 3600 / 60), part(rem % 60))
}

#[cfg(test)]
mod tests {
    #[test]
    fn known_instants() {
        assert_eq!(super::rfc3339_nanos(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(super::rfc3339_nanos(1_709_251_199, 5), "2024-02-29T23:59:59.000000005Z");
        assert_eq!(super::rfc3339_nanos(1_798_761_600, 0), "2027-01-01T00:00:00.000000000Z");
    }
}
