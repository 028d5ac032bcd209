//! The chat's wire format: one JSON object per text frame, written by hand (four fixed
//! shapes do not need a JSON library in every instance). The room's frames are published
//! to a topic with history, so the host puts each one's `pos` first.

/// What a new member is told first ([`hello`]).
pub struct Hello<'a> {
    /// The nickname it got.
    pub nick: &'a str,
    /// Who else is in the room (their nicknames, from presence).
    pub members: &'a [String],
    /// The room's history position when it joined: frames up to it are history.
    pub epoch: &'a str,
    pub head: u64,
    /// Whether the replay continues from where the page asked (`after=`); `false` when
    /// it asked for none, or the position is no longer kept (the page starts over).
    pub resumed: bool,
}

/// `{"type":"hello","nick":NICK,"members":[…],"epoch":E,"head":N,"resumed":B}`: sent to a
/// new member only, before the room's last messages (each carrying its `pos`).
pub fn hello(hello: &Hello<'_>) -> String {
    let mut out = start("hello", hello.nick);
    out.push_str(",\"members\":[");
    for (i, member) in hello.members.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_string(&mut out, member);
    }
    out.push_str("],\"epoch\":");
    push_string(&mut out, hello.epoch);
    out.push_str(&format!(
        ",\"head\":{},\"resumed\":{}}}",
        hello.head, hello.resumed
    ));
    out
}

/// `{"type":"join","nick":NICK,"count":N}`: `nick` joined; the room has `count` members.
pub fn join(nick: &str, count: u32) -> String {
    with_count(start("join", nick), count)
}

/// `{"type":"leave","nick":NICK,"count":N}`: `nick` left; `count` members remain.
pub fn leave(nick: &str, count: u32) -> String {
    with_count(start("leave", nick), count)
}

/// `{"type":"message","nick":NICK,"text":TEXT}`: what `nick` said.
pub fn message(nick: &str, text: &str) -> String {
    let mut out = start("message", nick);
    out.reserve(text.len() + 10);
    out.push_str(",\"text\":");
    push_string(&mut out, text);
    out.push('}');
    out
}

/// `{"type":KIND,"nick":NICK`, to be finished by the caller.
fn start(kind: &str, nick: &str) -> String {
    let mut out = String::with_capacity(32 + kind.len() + nick.len());
    out.push_str("{\"type\":\"");
    out.push_str(kind);
    out.push_str("\",\"nick\":");
    push_string(&mut out, nick);
    out
}

fn with_count(mut out: String, count: u32) -> String {
    out.push_str(",\"count\":");
    out.push_str(&count.to_string());
    out.push('}');
    out
}

/// Appends `text` as a JSON string (RFC 8259 §7): quotes, backslashes and control
/// characters escaped, everything else as is (the frame is UTF-8 anyway).
fn push_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                out.push_str(&format!("\\u{:04x}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(text: &str) -> String {
        let mut out = String::new();
        push_string(&mut out, text);
        out
    }

    #[test]
    fn the_four_shapes() {
        let members = ["bob".to_owned(), "c\"d".to_owned()];
        let greeting = Hello {
            nick: "ann",
            members: &members,
            epoch: "00000000000000ab",
            head: 7,
            resumed: false,
        };
        assert_eq!(
            hello(&greeting),
            r#"{"type":"hello","nick":"ann","members":["bob","c\"d"],"epoch":"00000000000000ab","head":7,"resumed":false}"#
        );
        assert_eq!(join("ann", 2), r#"{"type":"join","nick":"ann","count":2}"#);
        assert_eq!(
            leave("bob", 0),
            r#"{"type":"leave","nick":"bob","count":0}"#
        );
        assert_eq!(
            message("ann", "hi"),
            r#"{"type":"message","nick":"ann","text":"hi"}"#
        );
    }

    #[test]
    fn strings_escape_what_json_requires_and_nothing_else() {
        assert_eq!(json(""), r#""""#);
        assert_eq!(json(r#"say "hi" \o/"#), r#""say \"hi\" \\o/""#);
        assert_eq!(json("a\nb\rc\td"), r#""a\nb\rc\td""#);
        assert_eq!(
            json("\0\u{1}\u{1f}\u{7f}"),
            "\"\\u0000\\u0001\\u001f\u{7f}\""
        );
        assert_eq!(json("é ✓ 𝄞 </script>"), "\"é ✓ 𝄞 </script>\"");
        // Every ASCII character: controls are escaped, nothing raw below 0x20 survives,
        // and every other printable character except `"` and `\` passes unchanged.
        for byte in 0u8..0x80 {
            let c = char::from(byte);
            let escaped = json(&c.to_string());
            let inner = &escaped[1..escaped.len() - 1];
            assert!(inner.bytes().all(|b| b >= 0x20), "{byte:#x}: {inner:?}");
            match c {
                '"' | '\\' => assert_eq!(inner, format!("\\{c}")),
                '\n' | '\r' | '\t' => assert_eq!(inner.len(), 2),
                c if c < ' ' => assert_eq!(inner, format!("\\u{byte:04x}")),
                c => assert_eq!(inner, c.to_string()),
            }
        }
    }

    #[test]
    fn user_text_cannot_break_out_of_its_field() {
        let sneaky = r#"x","type":"leave","count":0,"nick":"y"#;
        assert_eq!(
            message("ann", sneaky),
            r#"{"type":"message","nick":"ann","text":"x\",\"type\":\"leave\",\"count\":0,\"nick\":\"y"}"#
        );
    }
}
