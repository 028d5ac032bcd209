//! Room names from paths and nicknames from queries: what a client sends, made safe to show
//! to everyone else.

/// The longest room name, in bytes.
pub const MAX_ROOM: usize = 64;
/// The longest nickname, in characters.
pub const MAX_NICK: usize = 24;

/// The room of a `/chat/ROOM` path: 1 to [`MAX_ROOM`] ASCII letters, digits, `-`, `_`
/// or `.`; `None` for any other path.
pub fn room(path: &str) -> Option<&str> {
    let room = path.strip_prefix("/chat/")?;
    let valid = (1..=MAX_ROOM).contains(&room.len())
        && room
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    valid.then_some(room)
}

/// The nickname asked for in the query (`nick=ann`, percent-encoded as a form would send
/// it), keeping only letters, digits, `-`, `_` and `.`, at most [`MAX_NICK`] of them;
/// `None` when nothing is left.
pub fn nick(query: &str) -> Option<String> {
    let wanted = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("nick="))?;
    let decoded = percent_decode(wanted);
    let nick: String = String::from_utf8_lossy(&decoded)
        .chars()
        .filter(|&c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .take(MAX_NICK)
        .collect();
    (!nick.is_empty()).then_some(nick)
}

/// The position a reconnecting page asks to resume after (`after=EPOCH-OFFSET`, the
/// position of the last frame it got); `None` if absent or malformed.
pub fn after(query: &str) -> Option<(String, u64)> {
    let value = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("after="))?;
    let (epoch, offset) = value.split_once('-')?;
    let valid = epoch.len() == 16 && epoch.bytes().all(|b| b.is_ascii_hexdigit());
    Some((epoch.to_owned(), offset.parse().ok()?)).filter(|_| valid)
}

/// The nickname of a member who asked for none: `guest-` and the last four characters of
/// its connection id. The last: an id starts with its runner's node id, the same for every
/// connection of a runner; it ends in random digits, so two guests rarely share one.
pub fn default_nick(id: &str) -> String {
    let chars: Vec<char> = id.chars().collect();
    let short: String = chars[chars.len().saturating_sub(4)..].iter().collect();
    format!("guest-{short}")
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, `%XX` a byte; a `%` not
/// followed by two hex digits stays as it is.
fn percent_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = match bytes[i] {
            b'%' => bytes
                .get(i + 1..i + 3)
                // Checked first: `from_str_radix` would also take a sign ("+1").
                .filter(|hex| hex.iter().all(u8::is_ascii_hexdigit))
                .and_then(|hex| std::str::from_utf8(hex).ok())
                .and_then(|hex| u8::from_str_radix(hex, 16).ok()),
            _ => None,
        };
        match (escaped, bytes[i]) {
            (Some(byte), _) => {
                out.push(byte);
                i += 3;
            }
            (None, b'+') => {
                out.push(b' ');
                i += 1;
            }
            (None, byte) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resume_position_is_epoch_dash_offset() {
        assert_eq!(
            after("nick=ann&after=00000000000000ab-17"),
            Some(("00000000000000ab".to_owned(), 17))
        );
        assert_eq!(after("after=ab-17"), None);
        assert_eq!(after("after=00000000000000ab-x"), None);
        assert_eq!(after("nick=ann"), None);
    }

    #[test]
    fn rooms_are_one_safe_segment() {
        assert_eq!(room("/chat/lobby"), Some("lobby"));
        assert_eq!(room("/chat/a-b_c.9"), Some("a-b_c.9"));
        let longest = format!("/chat/{}", "x".repeat(MAX_ROOM));
        assert_eq!(room(&longest).map(str::len), Some(MAX_ROOM));
        for bad in [
            "/",
            "/chat",
            "/chat/",
            "/chat/a/b",
            "/chat/a%20b",
            "/chat/é",
            "/chatx/a",
        ] {
            assert_eq!(room(bad), None, "{bad}");
        }
        assert_eq!(room(&format!("{longest}x")), None);
    }

    #[test]
    fn nicknames_are_decoded_filtered_and_cut() {
        assert_eq!(nick("nick=ann").as_deref(), Some("ann"));
        assert_eq!(nick("x=1&nick=bob&nick=eve").as_deref(), Some("bob"));
        assert_eq!(nick("nick=J%C3%BCrgen").as_deref(), Some("Jürgen"));
        assert_eq!(nick("nick=ann+b%2Fc").as_deref(), Some("annbc"));
        assert_eq!(
            nick("nick=%3Cscript%3Ealert(1)%3C/script%3E").as_deref(),
            Some("scriptalert1script")
        );
        assert_eq!(nick("nick=%zz%4").as_deref(), Some("zz4"));
        assert_eq!(nick("nick=%FF%FEok").as_deref(), Some("ok"), "bad UTF-8");
        let long = nick(&format!("nick={}", "é".repeat(100))).unwrap_or_default();
        assert_eq!(long.chars().count(), MAX_NICK);
        for none in ["", "nick=", "nick=%20%22", "nickname=ann", "xnick=ann"] {
            assert_eq!(nick(none), None, "{none}");
        }
    }

    #[test]
    fn default_nicknames_come_from_the_id() {
        // Two connections of one runner share the id's first (node) digits.
        assert_eq!(default_nick("1a2b3c4d5e6f"), "guest-5e6f");
        assert_ne!(
            default_nick("deadbeef000000000000000000001234"),
            default_nick("deadbeef000000000000000000005678")
        );
        assert_eq!(default_nick("ab"), "guest-ab");
    }

    #[test]
    fn percent_decoding_is_the_forms_one() {
        assert_eq!(percent_decode("a+b%20c%2b%"), b"a b c+%");
        assert_eq!(percent_decode("%e2%9c%93"), "✓".as_bytes());
        assert_eq!(percent_decode("%4"), b"%4");
        assert_eq!(percent_decode("%+1%-1"), b"% 1%-1");
    }
}
