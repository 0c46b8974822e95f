//! The one units formatter: every number a person reads (text tables, Markdown, plot
//! labels, error messages) is printed through these functions, so one quantity always looks
//! the same. A leaf module: it depends on nothing, and every layer may use it.

/// `value` with an SI prefix and `unit`, 3 significant digits. A bare number (no unit) takes
/// no prefix below 1 (0.411, not "411 m"); a value beyond the prefixes (above 999 T or
/// below 1 a) is printed in e-notation.
pub fn si(value: f64, unit: &str) -> String {
    const P: [(f64, &str); 11] = [
        (1e12, "T"),
        (1e9, "G"),
        (1e6, "M"),
        (1e3, "k"),
        (1.0, ""),
        (1e-3, "m"),
        (1e-6, "µ"),
        (1e-9, "n"),
        (1e-12, "p"),
        (1e-15, "f"),
        (1e-18, "a"),
    ];
    let join = |num: String, prefix: &str| {
        if prefix.is_empty() && unit.is_empty() {
            num
        } else {
            format!("{num} {prefix}{unit}")
        }
    };
    if value == 0.0 || !value.is_finite() {
        return join(format!("{value}"), "");
    }
    let a = value.abs();
    let found = if unit.is_empty() && a < 1.0 {
        None
    } else {
        // The largest prefix the value reaches once rounded to 3 digits (999.7 k is 1.00 M).
        P.iter().find(|(s, _)| a >= 0.9995 * *s).copied()
    };
    let sci = || join(format!("{value:.2e}"), "");
    let Some((scale, prefix)) = found else {
        return if unit.is_empty() && a >= 1e-3 {
            format!("{:.3}", value)
                .trim_end_matches('0')
                .trim_end_matches('.')
                .to_owned()
        } else {
            sci()
        };
    };
    let v = value / scale;
    if v.abs() >= 999.5 {
        return sci();
    }
    let digits = if v.abs() >= 99.95 {
        0
    } else if v.abs() >= 9.995 {
        1
    } else {
        2
    };
    join(format!("{v:.digits$}"), prefix)
}

/// An energy in pJ with four decimals (scientific below 0.01 pJ).
pub fn pj(e: f64) -> String {
    if e >= 0.01 {
        format!("{e:.4}")
    } else {
        format!("{e:.3e}")
    }
}

/// An energy given in pJ, printed with an SI prefix.
pub fn joules(pj: f64) -> String {
    let (v, unit) = if pj >= 1e9 {
        (pj / 1e9, "mJ")
    } else if pj >= 1e6 {
        (pj / 1e6, "µJ")
    } else if pj >= 1e3 {
        (pj / 1e3, "nJ")
    } else if pj >= 1.0 {
        (pj, "pJ")
    } else {
        (pj * 1e3, "fJ")
    };
    format!("{v:.4} {unit}")
}

/// A compact number for ticks and labels: four significant digits at most.
pub fn compact(v: f64) -> String {
    let a = v.abs();
    if v == 0.0 {
        "0".into()
    } else if (1e-3..1e5).contains(&a) {
        let decimals = (3 - a.log10().floor() as i32).max(0) as usize;
        let s = format!("{v:.decimals$}");
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_owned()
        } else {
            s
        }
    } else {
        let s = format!("{v:.2e}");
        let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
        let m = m.trim_end_matches('0').trim_end_matches('.');
        format!("{m}e{e}")
    }
}

/// Bytes as a short human-readable size.
pub fn bytes(bytes: u64) -> String {
    let b = bytes as f64;
    match bytes {
        0..1024 => format!("{bytes} B"),
        1024..1_048_576 => format!("{:.1} KiB", b / 1024.0),
        1_048_576..1_073_741_824 => format!("{:.1} MiB", b / 1_048_576.0),
        _ => format!("{:.2} GiB", b / 1_073_741_824.0),
    }
}

/// A ratio as `123×`, `4.5×`, `0.31×` or `5.2e-4×`.
pub fn times(r: f64) -> String {
    if r >= 100.0 {
        format!("{r:.0}×")
    } else if r >= 10.0 {
        format!("{r:.1}×")
    } else if r >= 0.1 {
        format!("{r:.2}×")
    } else {
        format!("{r:.1e}×")
    }
}

/// A share (0..=1) as a percentage: `45.0 %`, `0.4 %`, and `3.2e-3 %` below 0.1 % so that a
/// small share does not read as none.
pub fn percent(share: f64) -> String {
    let p = 100.0 * share;
    if p == 0.0 || p >= 0.1 {
        format!("{p:.1} %")
    } else {
        format!("{p:.1e} %")
    }
}

/// Digits grouped by thousands: 1234567 → "1,234,567".
pub fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 19 item 14: attojoule-seconds, bare numbers below 1 and without a unit.
    #[test]
    fn si_prefixes() {
        assert_eq!(si(1.234e-6, "J"), "1.23 µJ");
        assert_eq!(si(45.6e-3, "s"), "45.6 ms");
        assert_eq!(si(123_456.0, ""), "123 k");
        assert_eq!(si(4.19e-18, "J·s"), "4.19 aJ·s");
        assert_eq!(si(4.19e-21, "J·s"), "4.19e-21 J·s");
        assert_eq!(si(160.0, ""), "160");
        assert_eq!(si(0.411, ""), "0.411");
        assert_eq!(si(0.5, ""), "0.5");
        assert_eq!(si(2.5e-5, ""), "2.50e-5");
        assert_eq!(si(9.9996, "s"), "10.0 s");
        assert_eq!(si(999.7e3, "J"), "1.00 MJ");
        assert_eq!(si(3e15, "J"), "3.00e15 J");
        assert_eq!(si(0.0, "J"), "0 J");
        assert_eq!(times(2.5), "2.50×");
        assert_eq!(times(1234.0), "1234×");
        assert_eq!(times(5.2e-4), "5.2e-4×");
        assert_eq!(times(0.0107), "1.1e-2×");
        assert_eq!(times(0.55), "0.55×");
    }

    #[test]
    fn shares_read_as_percentages() {
        assert_eq!(percent(0.0), "0.0 %");
        assert_eq!(percent(0.45), "45.0 %");
        assert_eq!(percent(0.004), "0.4 %");
        assert_eq!(percent(3.2e-5), "3.2e-3 %");
        assert_eq!(percent(1.0), "100.0 %");
    }

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(group(0), "0");
        assert_eq!(group(999), "999");
        assert_eq!(group(1000), "1,000");
        assert_eq!(group(1234567), "1,234,567");
    }

    #[test]
    fn compact_numbers_for_labels() {
        assert_eq!(compact(0.0), "0");
        assert_eq!(compact(1234.0), "1234");
        assert_eq!(compact(3635.2065), "3635");
        assert_eq!(compact(0.012345), "0.01235");
        assert_eq!(compact(2.5), "2.5");
        assert_eq!(compact(1.5e-9), "1.5e-9");
        assert_eq!(compact(3.0e7), "3e7");
    }
}
