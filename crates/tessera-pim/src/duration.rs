//! ISO 8601 durations as Graph's schedule requests and policy rules write them
//! (`PT8H`, `PT30M`, `P90D`, `P1W`, `P1DT12H`): days, weeks, hours, minutes and
//! whole seconds. Years and months are refused (their length depends on the
//! calendar), as are fractions and negative values.

/// The longest duration read (ten years): a larger one is refused rather than
/// overflowing.
const MAX_SECONDS: i64 = 10 * 366 * 86_400;

/// Reads a duration to seconds, or says why not.
pub fn parse(text: &str) -> Result<i64, &'static str> {
    let rest = text
        .strip_prefix('P')
        .ok_or("a duration starts with P (e.g. PT8H)")?;
    if rest.is_empty() {
        return Err("the duration is empty");
    }
    let mut seconds: i64 = 0;
    let mut in_time = false;
    let mut number = String::new();
    let mut seen = String::new();
    let mut any = false;
    for c in rest.chars() {
        match c {
            '0'..='9' => {
                if number.len() >= 12 {
                    return Err("a number in the duration is too long");
                }
                number.push(c);
            }
            'T' if !in_time && number.is_empty() => in_time = true,
            unit => {
                let factor = match (in_time, unit) {
                    (false, 'W') => 7 * 86_400,
                    (false, 'D') => 86_400,
                    (true, 'H') => 3600,
                    (true, 'M') => 60,
                    (true, 'S') => 1,
                    (false, 'Y' | 'M') => {
                        return Err("years and months are not accepted: use days (P90D)");
                    }
                    _ => return Err("not an ISO 8601 duration (e.g. PT8H, P90D)"),
                };
                let key = if in_time {
                    unit.to_ascii_lowercase()
                } else {
                    unit
                };
                // Each unit once, largest first (W, D, then H, M, S).
                let rank = "WDhms".find(key).unwrap_or(0);
                let last = seen.chars().last().and_then(|c| "WDhms".find(c));
                if number.is_empty() || last.is_some_and(|last| last >= rank) {
                    return Err("not an ISO 8601 duration (e.g. PT8H, P90D)");
                }
                seen.push(key);
                let value: i64 = number.parse().map_err(|_| "a number is not readable")?;
                seconds = value
                    .checked_mul(factor)
                    .and_then(|part| seconds.checked_add(part))
                    .filter(|total| *total <= MAX_SECONDS)
                    .ok_or("the duration is longer than ten years")?;
                number.clear();
                any = true;
            }
        }
    }
    // A `T` must be followed by a time part.
    let time_given = seen.chars().any(|c| matches!(c, 'h' | 'm' | 's'));
    if !number.is_empty() || !any || (in_time && !time_given) {
        return Err("not an ISO 8601 duration (e.g. PT8H, P90D)");
    }
    Ok(seconds)
}

/// Writes seconds as a duration Graph clients read (`PT8H`, `P180D`, `PT1H30M`).
pub fn format(seconds: i64) -> String {
    let seconds = seconds.max(0);
    let days = seconds / 86_400;
    let rest = seconds % 86_400;
    let (hours, minutes, secs) = (rest / 3600, rest % 3600 / 60, rest % 60);
    let mut out = String::from("P");
    if days > 0 {
        out.push_str(&format!("{days}D"));
    }
    if rest > 0 || days == 0 {
        out.push('T');
        if hours > 0 {
            out.push_str(&format!("{hours}H"));
        }
        if minutes > 0 {
            out.push_str(&format!("{minutes}M"));
        }
        if secs > 0 || rest == 0 {
            out.push_str(&format!("{secs}S"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graph_durations_are_read() {
        assert_eq!(parse("PT8H"), Ok(8 * 3600));
        assert_eq!(parse("PT30M"), Ok(1800));
        assert_eq!(parse("P90D"), Ok(90 * 86_400));
        assert_eq!(parse("P1W"), Ok(7 * 86_400));
        assert_eq!(
            parse("P1DT12H30M15S"),
            Ok(86_400 + 12 * 3600 + 30 * 60 + 15)
        );
        assert_eq!(parse("PT0S"), Ok(0));
    }

    #[test]
    fn other_text_is_refused() {
        for bad in [
            "",
            "P",
            "PT",
            "8H",
            "PT8",
            "P1M",
            "P1Y",
            "PT1.5H",
            "P-1D",
            "PT8H8H",
            "P1DT",
            "PTT1H",
            "P1H",
            "PT1D",
            "p1d",
            "P99999999999999D",
            "P1D2D",
            "PT1S1H",
            "P1D1W",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn formatting_reads_back() {
        for seconds in [
            0,
            1,
            59,
            60,
            1800,
            3600,
            5400,
            8 * 3600,
            86_400,
            90 * 86_400 + 61,
        ] {
            assert_eq!(parse(&format(seconds)), Ok(seconds), "{}", format(seconds));
        }
        assert_eq!(format(8 * 3600), "PT8H");
        assert_eq!(format(180 * 86_400), "P180D");
    }
}
