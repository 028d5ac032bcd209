//! Drives `wsbox::client`, offering permessage-deflate, through the Autobahn TestSuite's fuzzingserver protocol (as served
//! by `kosoku -m fuzzingserver` or Autobahn's `wstest -m fuzzingserver`): it asks for the
//! number of cases, runs each one by echoing every message until the server closes, then
//! asks the server to write its reports.
//!
//! ```sh
//! kosoku -m fuzzingserver 127.0.0.1:9001 &
//! cargo run --example autobahn_client -- --server ws://127.0.0.1:9001 --agent wsbox
//! ```

use std::io;
use std::net::TcpStream;
use std::process::ExitCode;
use std::time::Duration;

use wsbox::{Message, Websocket};

/// How long one read or write may block. Every Autobahn case finishes in well under this
/// (even 9.x's 16 MiB messages on a loaded machine); a server that stalls longer has broken
/// the run, and we would rather say so than hang.
const IO_TIMEOUT: Duration = Duration::from_secs(60);

const USAGE: &str = "usage: autobahn_client [--server ws://HOST:PORT] [--agent NAME]   \
                     (defaults ws://127.0.0.1:9001, wsbox)";

fn main() -> ExitCode {
    let (server, agent) = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(why) => {
            eprintln!("autobahn_client: {why}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&server, &agent) {
        Ok(count) => {
            println!("autobahn_client: ran {count} cases against {server} as {agent:?}");
            ExitCode::SUCCESS
        }
        Err(why) => {
            eprintln!("autobahn_client: {why}");
            ExitCode::FAILURE
        }
    }
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<(String, String), String> {
    let (mut server, mut agent) = ("ws://127.0.0.1:9001".to_owned(), "wsbox".to_owned());
    while let Some(flag) = args.next() {
        let slot = match flag.as_str() {
            "--server" => &mut server,
            "--agent" => &mut agent,
            _ => return Err(format!("unknown argument {flag:?}")),
        };
        *slot = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
    }
    let server = server.trim_end_matches('/').to_owned();
    // The agent goes into a query string unescaped; anything else would need encoding.
    if agent.is_empty()
        || !agent
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return Err(format!(
            "agent {agent:?}: use letters, digits, '-', '_', '.'"
        ));
    }
    Ok((server, agent))
}

fn run(server: &str, agent: &str) -> Result<u32, String> {
    let count = case_count(server)?;
    for case in 1..=count {
        let url = format!("{server}/runCase?case={case}&agent={agent}");
        let websocket = open(&url).map_err(|why| format!("case {case}: {why}"))?;
        echo(websocket);
    }
    let url = format!("{server}/updateReports?agent={agent}");
    drain(open(&url)?).map_err(|why| format!("{url}: {why}"))?;
    Ok(count)
}

/// `GET /getCaseCount`: the server sends the count as one text message, then closes.
fn case_count(server: &str) -> Result<u32, String> {
    let url = format!("{server}/getCaseCount");
    let mut websocket = open(&url)?;
    let count = match websocket.recv() {
        Ok(Some(Message::Text(text))) => text
            .trim()
            .parse()
            .map_err(|_| format!("{url}: the case count {text:?} is not a number"))?,
        Ok(Some(Message::Binary(_))) => return Err(format!("{url}: binary case count")),
        Ok(None) => return Err(format!("{url}: closed before sending the case count")),
        Err(e) => return Err(format!("{url}: {e}")),
    };
    drain(websocket).map_err(|why| format!("{url}: {why}"))?;
    Ok(count)
}

fn open(url: &str) -> Result<Websocket<TcpStream>, String> {
    let session = wsbox::Config::default().deflate(Some(wsbox::deflate::Deflate::default()));
    let config = wsbox::client::ClientConfig::default()
        .read_timeout(Some(IO_TIMEOUT))
        .write_timeout(Some(IO_TIMEOUT))
        .session(session);
    wsbox::client::connect_with_config(url, &[], &config)
        .map(|(websocket, _)| websocket)
        .map_err(|e| format!("{url}: {e}"))
}

/// Echoes every message until the connection ends. Most cases end in a protocol violation
/// or an I/O error on purpose: by then the library has sent the matching close frame, and
/// the verdict is the server's to give.
fn echo(mut websocket: Websocket<TcpStream>) {
    while let Ok(Some(message)) = websocket.recv() {
        let sent = match message {
            Message::Text(text) => websocket.send_text(&text),
            Message::Binary(data) => websocket.send_binary(&data),
        };
        if sent.is_err() {
            return;
        }
    }
}

/// Waits for the server to end a connection on which we expect no messages.
fn drain(mut websocket: Websocket<TcpStream>) -> io::Result<()> {
    while websocket.recv()?.is_some() {}
    Ok(())
}
