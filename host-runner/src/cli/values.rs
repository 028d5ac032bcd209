//! The flags' value syntax: sizes, durations, origins, directory and environment grants.
//! Each parser refuses what the runner could not use, so clap reports it with the flag's name.

use std::path::PathBuf;
use std::time::Duration;

/// The longest duration any flag takes: far beyond any sensible setting, and small enough
/// that deadlines computed from it (`Instant + Duration`, epoch ticks) cannot overflow.
const MAX_DURATION: Duration = Duration::from_secs(365 * 86_400);

/// Splits `10s` or `64KiB` into its leading decimal number and the unit after it.
fn number_and_unit<'a>(text: &'a str, what: &str) -> Result<(u64, &'a str), String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    if number.is_empty() {
        return Err(format!("not a {what}: {text:?}"));
    }
    let number = number
        .parse()
        .map_err(|_| format!("{what} too large: {text:?}"))?;
    Ok((number, unit))
}

/// `1234`, `64KiB`, `16MiB`, `1GiB` (K/M/G and KB/MB/GB are read as binary units too).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (number, unit) = number_and_unit(text, "size")?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => {
            return Err(format!(
                "unknown size unit in {text:?} (use KiB, MiB or GiB)"
            ));
        }
    };
    number
        .checked_mul(1 << shift)
        .ok_or_else(|| format!("size too large: {text:?}"))
}

/// `250ms`, `10s`, `5m`, `2h`, `7d`; a bare number is seconds. At most [`MAX_DURATION`].
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = number_and_unit(text, "duration")?;
    let duration = match unit {
        "ms" => Duration::from_millis(number),
        "" | "s" => Duration::from_secs(number),
        "m" => Duration::from_secs(number.saturating_mul(60)),
        "h" => Duration::from_secs(number.saturating_mul(3600)),
        "d" => Duration::from_secs(number.saturating_mul(86_400)),
        _ => {
            return Err(format!(
                "unknown duration unit in {text:?} (use ms, s, m, h or d)"
            ));
        }
    };
    if duration > MAX_DURATION {
        return Err(format!(
            "{text:?} is too long: durations are at most {} days",
            MAX_DURATION.as_secs() / 86_400
        ));
    }
    Ok(duration)
}

/// `scheme://host[:port]`, as browsers send it in `Origin`: lowercased, without a default
/// port or a trailing slash, so that it compares equal to what browsers send.
pub fn parse_origin(text: &str) -> Result<String, String> {
    let malformed = || {
        format!(
            "expected an origin like https://app.example or http://localhost:8080, got {text:?}"
        )
    };
    let lower = text.trim().trim_end_matches('/').to_ascii_lowercase();
    let (scheme, authority) = lower.split_once("://").ok_or_else(malformed)?;
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    let (host, port) = match authority.rsplit_once(':') {
        // An IPv6 literal's colons are inside its brackets.
        Some((host, port)) if !port.contains(']') => (host, Some(port)),
        _ => (authority, None),
    };
    let bracketed = host.starts_with('[') && host.ends_with(']');
    let host_ok = !host.is_empty()
        && (bracketed || !host.contains(':'))
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-.[]:".contains(c));
    let port_ok = port.is_none_or(|port| port.parse::<u16>().is_ok());
    if !scheme_ok || !host_ok || !port_ok {
        return Err(malformed());
    }
    let default_port = match scheme {
        "http" | "ws" => Some("80"),
        "https" | "wss" => Some("443"),
        _ => None,
    };
    Ok(match port {
        Some(port) if Some(port) != default_port => format!("{scheme}://{host}:{port}"),
        _ => format!("{scheme}://{host}"),
    })
}

pub fn parse_dir(text: &str) -> Result<(PathBuf, String), String> {
    let (host, guest) = text
        .split_once("::")
        .ok_or_else(|| format!("expected HOST::GUEST, got {text:?}"))?;
    if host.is_empty() || guest.is_empty() {
        return Err(format!("expected HOST::GUEST, got {text:?}"));
    }
    Ok((PathBuf::from(host), guest.to_owned()))
}

pub fn parse_env(text: &str) -> Result<(String, Option<String>), String> {
    let (name, value) = match text.split_once('=') {
        Some((name, value)) => (name, Some(value.to_owned())),
        None => (text, None),
    };
    if name.is_empty() {
        return Err(format!("expected NAME[=VALUE], got {text:?}"));
    }
    Ok((name.to_owned(), value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations_parse() {
        assert_eq!(parse_size("64KiB"), Ok(65_536));
        assert_eq!(parse_size("3m"), Ok(3 << 20));
        assert_eq!(parse_size("17"), Ok(17));
        assert!(parse_size("5 parsecs").is_err());
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert!(parse_duration("1y").is_err());
        assert!(parse_duration("366d").is_err());
        assert_eq!(parse_duration("365m"), Ok(Duration::from_secs(365 * 60)));
    }

    #[test]
    fn out_of_range_numbers_are_refused() {
        assert_eq!(parse_duration("31536000s"), Ok(MAX_DURATION));
        for huge in ["31536001s", "18446744073709551615s", "999999999999999999m"] {
            let error = parse_duration(huge).expect_err(huge);
            assert!(error.contains("at most 365 days"), "{error}");
        }
        let error = parse_duration("99999999999999999999999s").expect_err("unreadable");
        assert!(error.contains("too large"), "{error}");
        let error = parse_size("99999999999GiB").expect_err("overflows");
        assert!(error.contains("too large"), "{error}");
        assert!(parse_duration("ms").is_err());
    }

    #[test]
    fn origins_are_normalized_as_browsers_send_them() {
        assert_eq!(
            parse_origin("HTTPS://App.Example:443/"),
            Ok("https://app.example".into())
        );
        assert_eq!(
            parse_origin("http://localhost:8080"),
            Ok("http://localhost:8080".into())
        );
        assert_eq!(parse_origin("http://[::1]:80"), Ok("http://[::1]".into()));
        assert_eq!(parse_origin("http://[::1]"), Ok("http://[::1]".into()));
        for bad in [
            "app.example",
            "https://",
            "https://app.example/path",
            "https://user@app.example",
            "https://app.example:99999",
            "https://a:b:80",
            "*",
            "null",
        ] {
            assert!(parse_origin(bad).is_err(), "{bad}");
        }
    }
}
