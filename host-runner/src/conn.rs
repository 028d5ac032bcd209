//! What the runner keeps for one connection's guest, in its store: the id, the upgrade
//! request, the protocol session, subscriptions, attachment and alarm, and the frames its
//! current callback has sent. The `connection` imports ([`crate::engine`]) act on it.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use wsbox::frame::Data;
use wsbox::session::Session;

use crate::bus::Bus;
use crate::cork::Cork;
use crate::deflate::{self, Form};
use crate::engine::Message;
use crate::peer::Peer;
use crate::registry::Id;

/// Alarms further away are set this far: a year, far beyond any connection's life and
/// safe from `Instant` overflow.
const MAX_ALARM: Duration = Duration::from_secs(365 * 86_400);

/// The upgrade request as the guest's `request` import returns it.
#[derive(Default, Clone)]
pub struct RequestInfo {
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, Vec<u8>)>,
    pub protocol: Option<String>,
}

/// Limits on what a guest keeps in the host (flags of the same names).
#[derive(Clone, Copy)]
pub struct AppLimits {
    pub max_topics: u32,
    pub max_topic_len: u32,
    pub max_attachment: u32,
    pub max_auto_responses: u32,
    pub max_auto_response_size: u32,
    pub max_backpressure: usize,
}

/// A message the host answers by itself (`set-auto-response`).
pub struct AutoResponse {
    kind: Data,
    request: Box<[u8]>,
    /// The response, as the frame that carries it.
    frame: Box<[u8]>,
}

impl AutoResponse {
    pub fn new(request: &Message, response: &Message) -> Self {
        let mut frame = Vec::new();
        crate::cork::encode(&mut frame, response);
        let (kind, request) = crate::cork::parts(request);
        AutoResponse {
            kind,
            request: request.into(),
            frame: frame.into_boxed_slice(),
        }
    }

    pub fn answers(&self, message: &Message) -> bool {
        let (kind, bytes) = crate::cork::parts(message);
        self.kind == kind && *self.request == *bytes
    }
}

pub struct Conn {
    pub id: Id,
    pub bus: Arc<Bus>,
    pub limits: AppLimits,
    pub request: RequestInfo,
    /// The WebSocket once upgraded: the framing state and the shared write side.
    pub socket: Option<Socket>,
    /// Frames the running callback sent to this connection (`send`, a publish or
    /// `send-to` that includes it), in order; written when the callback returns.
    pub cork: Cork,
    /// Other connections this callback queued frames to (`send-to`, `publish`), written
    /// when it returns: see [`Peer::deliver`].
    pub delivered: Vec<Arc<Peer>>,
    /// Topics, in the order subscribed; applied to the bus once upgraded.
    pub topics: Vec<Box<str>>,
    pub attachment: Vec<u8>,
    pub auto_responses: Vec<AutoResponse>,
    pub alarm: Option<Instant>,
    /// A close the guest asked for in `handle`, before there is a session: its frame
    /// follows the 101 (and anything sent in `handle`).
    pub early_close: Option<(u16, String)>,
    /// The code of the close frame sent, once sent.
    pub close_sent: Option<u16>,
}

pub struct Socket {
    pub session: Session,
    pub peer: Arc<Peer>,
}

impl Conn {
    pub fn new(id: Id, bus: Arc<Bus>, limits: AppLimits) -> Self {
        Conn {
            id,
            bus,
            limits,
            request: RequestInfo::default(),
            socket: None,
            cork: Cork::default(),
            delivered: Vec::new(),
            topics: Vec::new(),
            attachment: Vec::new(),
            auto_responses: Vec::new(),
            alarm: None,
            early_close: None,
            close_sent: None,
        }
    }

    /// Frees what a connection going idle need not keep: buffer space, and the request's
    /// strings moved to fresh allocations, next to each other, so that the holes the
    /// dropped instance leaves can be given back to the kernel.
    pub fn shrink(&mut self) {
        if let Some(socket) = &mut self.socket {
            socket.session.shrink_to_fit();
        }
        self.delivered = Vec::new();
        if self.cork.is_empty() {
            self.cork = Cork::default();
        }
        self.request = self.request.clone();
    }

    /// Writes what the last callback delivered to other connections.
    pub fn flush_delivered(&mut self) {
        for peer in self.delivered.drain(..) {
            peer.flush_delivered();
        }
    }

    /// Forgets what the guest set up in `handle` for a WebSocket that did not open.
    pub fn reset(&mut self) {
        self.cork.clear();
        self.topics.clear();
        self.attachment.clear();
        self.auto_responses.clear();
        self.alarm = None;
        self.early_close = None;
    }

    /// Whether our close frame is out (or, before the upgrade, requested).
    pub fn is_closed(&self) -> bool {
        match &self.socket {
            Some(socket) => socket.session.is_closed(),
            None => self.early_close.is_some(),
        }
    }

    /// Starts the close handshake: the close frame goes into the cork behind everything
    /// sent before it. Before the upgrade the close waits for the session.
    pub fn close(&mut self, code: u16, reason: &str) {
        match &mut self.socket {
            Some(socket) => {
                if socket.session.close(code, reason).is_ok() {
                    socket.session.poll_transmit(self.cork.bytes());
                    self.alarm = None;
                    let sendable = wsbox::CloseCode(code).is_sendable();
                    self.close_sent = Some(if sendable { code } else { 1000 });
                }
            }
            None => {
                self.early_close.get_or_insert((code, reason.to_owned()));
            }
        }
    }

    /// Queues a message to this connection into the cork, compressed if its handshake
    /// agreed to that (sends before the upgrade go uncompressed: nothing is agreed yet).
    pub fn push(&mut self, message: Message) {
        let Some(socket) = &mut self.socket else {
            return self.cork.push(message);
        };
        let form = socket.peer.form();
        if form == Form::Plain {
            return self.cork.push(message);
        }
        let (kind, payload) = crate::cork::parts(&message);
        if !deflate::encode(self.cork.bytes(), form, kind, payload) {
            // Context takeover: the session compresses with its own context. It is not
            // closed (the caller checked), so sending cannot fail.
            let _ = match &message {
                Message::Text(text) => socket.session.send_text(text),
                Message::Binary(data) => socket.session.send_binary(data),
            };
            let before = self.cork.bytes().len();
            socket.session.poll_transmit(self.cork.bytes());
            deflate::count(payload.len(), self.cork.bytes().len() - before);
        }
    }

    /// Queues the automatic answer to `message`, if it has one; returns whether it had.
    pub fn auto_respond(&mut self, message: &Message) -> bool {
        let Some(auto) = self.auto_responses.iter().find(|a| a.answers(message)) else {
            return false;
        };
        if !self.is_closed() {
            self.cork.bytes().extend_from_slice(&auto.frame);
        }
        true
    }

    pub fn set_alarm(&mut self, after: Duration) {
        if !self.is_closed() {
            self.alarm = Some(Instant::now() + after.min(MAX_ALARM));
        }
    }
}
