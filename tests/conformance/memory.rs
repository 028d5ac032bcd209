//! The server under test in memory: a server `Session` with the limits of the row, fed
//! each write as one chunk and driven as every driver in the library drives it
//! (`Session::next_event`, echoing each message before the next event). No socket, no
//! thread, no timing: what fails here is the protocol core.

use wsbox::session::{Event, Session};

use crate::{Case, config, expect_replies};

/// Feeds the case to a fresh session and reads what it queued.
pub fn run_case(case: &Case) -> Result<(), String> {
    let mut server = Session::server(config(case.limited));
    let mut wire = Vec::new();
    for bytes in std::iter::once(&case.with_request).chain(&case.writes) {
        let mut input = &bytes[..];
        while let Some(event) = server.next_event(&mut input) {
            if let Event::Message(message) = event {
                // Refused once the session is closing, as the socket server's echo is.
                let _ = server.send_message(&message);
            }
        }
        server.poll_transmit(&mut wire);
    }
    let mut rest = &wire[..];
    expect_replies(case, &mut rest)?;
    if !rest.is_empty() {
        return Err(format!("{} more bytes after the close", rest.len()));
    }
    if !server.is_finished() {
        return Err("the session is not finished after its close".into());
    }
    Ok(())
}
