//! Incremental UTF-8 validation for text messages that arrive in pieces.
//!
//! The only `unsafe` in the crate lives here: turning a buffer this module has already
//! validated into a `String` without validating it a second time.

use super::error::ProtocolError;

/// Validates `bytes`, which may end in the middle of a code point. Returns the length of the
/// prefix that is complete and valid; fails as soon as a sequence is invalid, even if it is
/// cut off (e.g. `F4 90` can never start a valid code point).
pub(crate) fn validate_prefix(bytes: &[u8]) -> Result<usize, ProtocolError> {
    match std::str::from_utf8(bytes) {
        Ok(_) => Ok(bytes.len()),
        Err(e) if e.error_len().is_none() => Ok(e.valid_up_to()),
        Err(_) => Err(ProtocolError::InvalidUtf8),
    }
}

/// Turns a complete text message into a `String`. `valid_up_to` is what
/// [`validate_prefix`] has vouched for; anything after it is validated now.
pub(crate) fn into_string(bytes: Vec<u8>, valid_up_to: usize) -> Result<String, ProtocolError> {
    let tail = bytes.get(valid_up_to..).ok_or(ProtocolError::InvalidUtf8)?;
    if std::str::from_utf8(tail).is_err() || !bytes.is_char_boundary_at(valid_up_to) {
        return Err(ProtocolError::InvalidUtf8);
    }
    // SAFETY: `bytes[..valid_up_to]` was validated by `validate_prefix` (callers only pass
    // lengths it returned, over the same bytes), `valid_up_to` is not inside a code point
    // (checked above), and `bytes[valid_up_to..]` was validated just now. Two valid UTF-8
    // strings joined at a code-point boundary are valid UTF-8. Tested against
    // `String::from_utf8` in `tests::into_string_matches_std`.
    Ok(unsafe { String::from_utf8_unchecked(bytes) })
}

trait CharBoundary {
    fn is_char_boundary_at(&self, at: usize) -> bool;
}

impl CharBoundary for Vec<u8> {
    /// A byte that is not a continuation byte (`10xxxxxx`) starts a code point.
    fn is_char_boundary_at(&self, at: usize) -> bool {
        self.get(at).is_none_or(|b| (*b as i8) >= -0x40)
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
pub(crate) fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `bytes` in chunks of `step`, as `Session` does, then finishes.
    fn chunked(bytes: &[u8], step: usize) -> Result<String, ProtocolError> {
        let mut valid = 0;
        let mut seen = 0;
        while seen < bytes.len() {
            seen = (seen + step).min(bytes.len());
            valid += validate_prefix(&bytes[valid..seen])?;
        }
        into_string(bytes.to_vec(), valid)
    }

    #[test]
    fn into_string_matches_std() {
        let cases: &[&[u8]] = &[
            b"",
            b"hello",
            "κόσμε".as_bytes(),
            "𝄞 music".as_bytes(),
            b"\xF4\x90\x80\x80",
            b"\xED\xA0\x80",
            b"\xC0\xAF",
            b"abc\xE2\x82",
            b"\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5\xED\xA0\x80edited",
            b"\xFF",
        ];
        for bytes in cases {
            let expected = String::from_utf8(bytes.to_vec()).ok();
            for step in 1..=bytes.len().max(1) {
                assert_eq!(chunked(bytes, step).ok(), expected, "{bytes:?} step {step}");
            }
        }
    }

    #[test]
    fn fails_fast_on_impossible_prefix() {
        // F4 90 is already out of range: no continuation can fix it.
        assert_eq!(
            validate_prefix(b"ok\xF4\x90"),
            Err(ProtocolError::InvalidUtf8)
        );
        // E2 82 could still become a valid euro sign.
        assert_eq!(validate_prefix(b"ok\xE2\x82"), Ok(2));
    }

    #[test]
    fn truncate_respects_boundaries() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("héllo", 3), "hé");
        assert_eq!(truncate("abc", 10), "abc");
    }
}
