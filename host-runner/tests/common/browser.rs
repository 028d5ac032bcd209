//! A headless Chromium driven over the DevTools protocol (a WebSocket, spoken here with
//! tungstenite), and what the chat tests read from and type into guests/chat's page.
//! `./test.sh` installs Chromium (`ensure_chromium` in scripts/setup.sh).

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

/// How long a page may take to show what the test waits for, on a loaded machine.
const PAGE_TIMEOUT: Duration = Duration::from_secs(30);

/// A headless Chromium with a DevTools endpoint on a free loopback port; killed (and its
/// profile removed) on drop.
pub struct Browser {
    child: Child,
    profile: PathBuf,
    devtools: WebSocket<MaybeTlsStream<TcpStream>>,
    next_id: u64,
}

impl Browser {
    pub fn start() -> Browser {
        // One profile per browser: the tests of a file run at the same time.
        static STARTED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let profile = std::env::temp_dir().join(format!("wsbox-chat-{}-{n}", std::process::id()));
        let mut child = Command::new("chromium")
            .args(super::HEADLESS_CHROMIUM)
            .args([
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("chromium is installed (./test.sh runs ensure_chromium from scripts/setup.sh)");
        // Chromium announces its endpoint on stderr; the rest of stderr is drained, unread.
        let stderr = child.stderr.take().expect("piped stderr");
        let (found, announced) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut found = Some(found);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("DevTools listening on ")
                    && let Some(found) = found.take()
                {
                    let _ = found.send(url.trim().to_owned());
                }
            }
        });
        let url = announced
            .recv_timeout(PAGE_TIMEOUT)
            .expect("chromium announces its DevTools endpoint");
        let (devtools, _) = tungstenite::connect(&url).expect("connect to DevTools");
        if let MaybeTlsStream::Plain(stream) = devtools.get_ref() {
            stream
                .set_read_timeout(Some(PAGE_TIMEOUT))
                .expect("timeout");
        }
        Browser {
            child,
            profile,
            devtools,
            next_id: 0,
        }
    }

    /// Sends a DevTools command (to the page `session`, if given) and returns its
    /// response, skipping events.
    fn call(&mut self, session: Option<&str>, method: &str, params: &str) -> String {
        self.next_id += 1;
        let id = self.next_id;
        let session = session
            .map(|s| format!(r#","sessionId":"{s}""#))
            .unwrap_or_default();
        let command = format!(r#"{{"id":{id},"method":"{method}","params":{params}{session}}}"#);
        self.devtools
            .send(Message::text(command))
            .expect("send to DevTools");
        let tag = format!(r#""id":{id},"#);
        loop {
            match self.devtools.read().expect("read from DevTools") {
                Message::Text(text) if text.contains(&tag) => {
                    assert!(!text.contains(r#""error":"#), "{method}: {text}");
                    return text.as_str().to_owned();
                }
                _ => continue,
            }
        }
    }

    /// Opens `url` in a new page and returns the DevTools session attached to it.
    pub fn open(&mut self, url: &str) -> String {
        self.open_target(url).1
    }

    /// Opens `url` in a new page and returns its target id and the session attached to it.
    pub fn open_target(&mut self, url: &str) -> (String, String) {
        let created = self.call(
            None,
            "Target.createTarget",
            &format!(r#"{{"url":"{url}"}}"#),
        );
        let target = json_string(&created, "targetId").expect("a target id");
        let attached = self.call(
            None,
            "Target.attachToTarget",
            &format!(r#"{{"targetId":"{target}","flatten":true}}"#),
        );
        let session = json_string(&attached, "sessionId").expect("a session id");
        (target, session)
    }

    /// Closes the page `target`, as a user closing its tab.
    pub fn close(&mut self, target: &str) {
        self.call(
            None,
            "Target.closeTarget",
            &format!(r#"{{"targetId":"{target}"}}"#),
        );
    }

    /// Evaluates `expression` (which must return a string) in the page of `session`.
    pub fn eval(&mut self, session: &str, expression: &str) -> String {
        let params = format!(
            r#"{{"expression":{},"returnByValue":true}}"#,
            json_quote(expression)
        );
        let response = self.call(Some(session), "Runtime.evaluate", &params);
        json_string(&response, "value").unwrap_or_default()
    }

    /// Evaluates `expression` until `done` accepts its value; panics after PAGE_TIMEOUT.
    pub fn wait_for(&mut self, session: &str, expression: &str, done: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + PAGE_TIMEOUT;
        loop {
            let value = self.eval(session, expression);
            if done(&value) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{expression} is still {value:?}; page: {}",
                self.eval(session, "document.body ? document.body.innerText : ''")
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// `s` as a JSON string literal.
fn json_quote(s: &str) -> String {
    let mut quoted = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            c if u32::from(c) < 0x20 => quoted.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// The first string value of `"key"` in a JSON text, unescaped. (DevTools responses are
/// small and their keys unambiguous here; a JSON parser would be a dependency for four
/// look-ups.)
fn json_string(json: &str, key: &str) -> Option<String> {
    let start = json.find(&format!(r#""{key}":""#))? + key.len() + 4;
    let mut value = String::new();
    let mut chars = json[start..].chars();
    loop {
        match chars.next()? {
            '"' => return Some(value),
            '\\' => match chars.next()? {
                'n' => value.push('\n'),
                't' => value.push('\t'),
                'r' => value.push('\r'),
                'b' => value.push('\u{8}'),
                'f' => value.push('\u{c}'),
                'u' => {
                    let hex: String = chars.by_ref().take(4).collect();
                    let unit = u32::from_str_radix(&hex, 16).ok()?;
                    // Surrogate pairs are not needed by this test's texts.
                    value.push(char::from_u32(unit).unwrap_or('\u{fffd}'));
                }
                other => value.push(other),
            },
            c => value.push(c),
        }
    }
}

/// The texts of the page's `#log li` items, one per line.
pub const LOG: &str =
    "Array.from(document.querySelectorAll('#log li')).map(li => li.textContent).join('\\n')";
pub const COUNT: &str = "(document.querySelector('#count') || {}).textContent || ''";

/// Whether the `#count` text says `n` (the only number in it).
pub fn count_is(text: &str, n: u32) -> bool {
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    digits == n.to_string()
}

pub fn say(browser: &mut Browser, session: &str, text: &str) {
    let script = format!(
        "document.querySelector('#input').value = {}; \
         document.querySelector('#send').click(); 'sent'",
        json_quote(text)
    );
    assert_eq!(browser.eval(session, &script), "sent");
}

/// Loads the default handler's demo page at `url` in a fresh headless Chromium (with
/// `flags` besides the usual ones) until the page shows the echo of what its WebSocket
/// sent, then checks that `runner` logged a clean close (1000) of that WebSocket. Returns
/// what the page shows in `#extensions`: the WebSocket's `extensions`, or `none`.
///
/// `--dump-dom` snapshots the page when the virtual-time budget runs out, and a WebSocket
/// does not hold virtual time back the way a pending fetch does, so on a loaded machine the
/// snapshot can come before the echo arrives: the budget grows instead of trusting one race.
pub fn demo_page_echoes(runner: &super::Runner, url: &str, flags: &[String]) -> String {
    let mut last = String::new();
    for budget_ms in [5_000, 10_000, 20_000, 40_000] {
        let dom = dump_dom(url, flags, budget_ms);
        let sent = element_text(&dom, "sent").expect("the page has #sent");
        let echo = element_text(&dom, "echo").expect("the page has #echo");
        if sent.starts_with("hello from") && echo == sent {
            let log = runner.wait_for_log("websocket closed");
            assert!(log.contains("close_code=\"1000\""), "{log}");
            let extensions = element_text(&dom, "extensions").expect("the page has #extensions");
            return extensions.to_owned();
        }
        last = dom;
    }
    panic!("no attempt showed the echo of what the page at {url} sent; last DOM:\n{last}");
}

/// The Chromium flag that trusts `certs`' leaf by its public key, and nothing else.
pub fn trusting(certs: &super::tls::Certs) -> String {
    use base64::Engine;
    let digest = ring::digest::digest(&ring::digest::SHA256, &certs.spki);
    let spki_hash = base64::engine::general_purpose::STANDARD.encode(digest.as_ref());
    format!("--ignore-certificate-errors-spki-list={spki_hash}")
}

/// Loads `url` once in a fresh headless Chromium and returns the DOM it dumps.
fn dump_dom(url: &str, flags: &[String], budget_ms: u32) -> String {
    // A profile of its own per load (an SPKI list is honoured only with one, and the tests
    // of a file run at the same time).
    static LOADS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = LOADS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let profile = std::env::temp_dir().join(format!("wsbox-dom-{}-{n}", std::process::id()));
    let mut child = Command::new("chromium")
        .args(super::HEADLESS_CHROMIUM)
        .args(flags)
        .arg("--dump-dom")
        .arg(format!("--virtual-time-budget={budget_ms}"))
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium is installed (./test.sh runs ensure_chromium from scripts/setup.sh)");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = std::fs::remove_dir_all(&profile);
            panic!("chromium did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let output = child.wait_with_output().expect("chromium output");
    let _ = std::fs::remove_dir_all(&profile);
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The text of the element `<code id="{id}">…</code>` in a dumped DOM.
fn element_text<'a>(dom: &'a str, id: &str) -> Option<&'a str> {
    let start = dom.find(&format!("id=\"{id}\">"))? + id.len() + 6;
    let end = dom[start..].find('<')? + start;
    Some(&dom[start..end])
}
