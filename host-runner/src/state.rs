//! One connection's state: what the runner keeps for its guest — the id, the upgrade
//! request, the protocol session, subscriptions, attachment, alarm and auto-responses, and
//! the frames its current callback has sent. The guest's `connection` imports act on it
//! through the methods here (the engine only translates); it lives in the sandbox's store
//! while the guest is live and in the [`Guest`](crate::guest::Guest) while it hibernates.
//! Its fields are private: every change goes through a method of this file.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use wsbox::frame::Data;
use wsbox::session::Session;

use crate::bus::Bus;
use crate::cluster::Cluster;
use crate::cork::Cork;
use crate::deflate::{self, Form, Outgoing};
use crate::history::Position;
use crate::id::Id;
use crate::metrics::METRICS;
use crate::peer::{self, Peer, Refused};
use crate::settings::AppLimits;
use crate::wit::Message;
use crate::wit::bindings::wsbox::websocket::connection::{
    AutoResponseError, SendError, TooLarge, TopicError,
};

mod rooms;

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

/// A message the host answers by itself (`set-auto-response`).
struct AutoResponse {
    kind: Data,
    request: Box<[u8]>,
    /// The response, as the frame that carries it.
    frame: Box<[u8]>,
}

impl AutoResponse {
    fn new(request: &Message, response: &Message) -> Self {
        let mut frame = Vec::new();
        crate::cork::encode(&mut frame, response);
        let (kind, request) = crate::wit::parts(request);
        AutoResponse {
            kind,
            request: request.into(),
            frame: frame.into_boxed_slice(),
        }
    }

    fn answers(&self, message: &Message) -> bool {
        let (kind, bytes) = crate::wit::parts(message);
        self.kind == kind && *self.request == *bytes
    }
}

pub struct State {
    id: Id,
    bus: Arc<Bus>,
    limits: AppLimits,
    request: RequestInfo,
    /// The WebSocket once upgraded: the framing state and the shared write side.
    upgraded: Option<Upgraded>,
    /// Frames the running callback sent to this connection (`send`, a publish or
    /// `send-to` that includes it), in order; written when the callback returns.
    cork: Cork,
    /// Other connections this callback queued frames to (`send-to`, `publish`), written
    /// when it returns: see [`Peer::deliver`].
    delivered: Vec<Arc<Peer>>,
    /// Topics, in the order subscribed; applied to the bus once upgraded, but for those
    /// still replaying their history.
    topics: Vec<Box<str>>,
    /// Replays and presence info, for the connections that use them (boxed: most never
    /// do, and a hibernated connection's state should stay small).
    rooms: Option<Box<rooms::Rooms>>,
    attachment: Vec<u8>,
    auto_responses: Vec<AutoResponse>,
    alarm: Option<Instant>,
    /// A close the guest asked for in `handle`, before there is a session: its frame
    /// follows the 101 (and anything sent in `handle`).
    early_close: Option<(u16, String)>,
    /// The code of the close frame sent, once sent.
    close_sent: Option<u16>,
}

/// The WebSocket of an upgraded connection: its framing state and its write side.
struct Upgraded {
    session: Session,
    peer: Arc<Peer>,
}

/// Where a message or a close for another connection goes (`send-to`, `close-other`).
pub enum Target {
    /// This connection itself.
    Me,
    /// A connection of this runner.
    Here(Arc<Peer>),
    /// A connection of another runner, through the cluster (`None`: no cluster).
    There(Option<Arc<Cluster>>, Id),
}

impl State {
    pub fn new(id: Id, bus: Arc<Bus>, limits: AppLimits) -> Self {
        State {
            id,
            bus,
            limits,
            request: RequestInfo::default(),
            upgraded: None,
            cork: Cork::default(),
            delivered: Vec::new(),
            topics: Vec::new(),
            rooms: None,
            attachment: Vec::new(),
            auto_responses: Vec::new(),
            alarm: None,
            early_close: None,
            close_sent: None,
        }
    }

    pub fn id(&self) -> Id {
        self.id
    }

    pub fn limits(&self) -> &wsbox::app::Limits {
        &self.limits.guest
    }

    pub fn request(&self) -> &RequestInfo {
        &self.request
    }

    /// The upgrade request, as the HTTP phase read it.
    pub fn set_request(&mut self, request: RequestInfo) {
        self.request = request;
    }

    /// The subprotocol the 101 agreed to.
    pub fn set_protocol(&mut self, protocol: Option<String>) {
        self.request.protocol = protocol;
    }

    /// Topics, in the order subscribed.
    pub fn topics(&self) -> &[Box<str>] {
        &self.topics
    }

    pub fn alarm(&self) -> Option<Instant> {
        self.alarm
    }

    /// The code of our close frame, once sent.
    pub fn close_sent(&self) -> Option<u16> {
        self.close_sent
    }

    /// The session, once upgraded.
    pub fn session(&mut self) -> Option<&mut Session> {
        self.upgraded.as_mut().map(|u| &mut u.session)
    }

    /// The write side, once upgraded.
    pub fn peer(&self) -> Option<&Arc<Peer>> {
        self.upgraded.as_ref().map(|u| &u.peer)
    }

    /// The upgrade went through: the connection frames with `session` and is written
    /// through `peer`; a close the guest asked for in `handle` is sent now.
    pub fn upgrade(&mut self, session: Session, peer: Arc<Peer>) {
        self.upgraded = Some(Upgraded { session, peer });
        if let Some((code, reason)) = self.early_close.take() {
            self.close(code, &reason);
        }
    }

    /// An empty state for the same connection: what a dropped instance's store keeps when
    /// this one moves out of it (see [`Guest::hibernate`](crate::guest::Guest::hibernate)).
    pub fn placeholder(&self) -> Self {
        State::new(self.id, self.bus.clone(), self.limits)
    }

    /// Frees what a connection going idle need not keep: buffer space, and the request's
    /// strings moved to fresh allocations, next to each other, so that the holes the
    /// dropped instance leaves can be given back to the kernel.
    pub fn shrink(&mut self) {
        if let Some(upgraded) = &mut self.upgraded {
            upgraded.session.shrink_to_fit();
        }
        // A reload may hibernate an instance between two callbacks of one read: what the
        // first delivered to other connections is written now, not forgotten (they would
        // wait for their own next event).
        self.flush_delivered();
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

    /// Writes what the last callbacks sent to this connection, in one write; the close
    /// frame, once out, marks the last of it.
    pub fn write_cork(&mut self, peer: &Peer) {
        self.flush_delivered();
        let closed = self.is_closed();
        self.cork.drain(|slices| peer.write_own(slices, closed));
        if closed {
            peer.write_own(&[], true);
        }
    }

    /// Moves what this callback sent so far to `peer`'s queue (written now if nothing waits
    /// ahead of it), before a message of a topic with history joins it there; what it
    /// delivered to others waits for the flush at the callback's end, so that several
    /// publishes reach each subscriber in one write. (Flushing them here, once per publish,
    /// took 2.5× the CPU per delivery at 100 subscribers: one writev per message.)
    fn queue_cork(&mut self, peer: &Peer) {
        self.cork.drain(|slices| peer.write_own(slices, false));
    }

    /// Drops what the running callback sent (it failed).
    pub fn drop_sent(&mut self) {
        self.cork.clear();
    }

    /// Moves the session's own output (pongs, close frames) into the cork.
    pub fn transmit(&mut self) {
        if let Some(upgraded) = &mut self.upgraded {
            upgraded.session.poll_transmit(self.cork.bytes());
        }
    }

    /// Forgets what the guest set up in `handle` for a WebSocket that did not open.
    pub fn reset(&mut self) {
        self.cork.clear();
        self.topics.clear();
        self.rooms = None;
        self.attachment.clear();
        self.auto_responses.clear();
        self.alarm = None;
        self.early_close = None;
    }

    /// Whether our close frame is out (or, before the upgrade, requested).
    pub fn is_closed(&self) -> bool {
        match &self.upgraded {
            Some(upgraded) => upgraded.session.is_closed(),
            None => self.early_close.is_some(),
        }
    }

    /// Starts the close handshake: the close frame goes into the cork behind everything
    /// sent before it. Before the upgrade the close waits for the session.
    pub fn close(&mut self, code: u16, reason: &str) {
        match &mut self.upgraded {
            Some(upgraded) => {
                if upgraded.session.close(code, reason).is_ok() {
                    upgraded.session.poll_transmit(self.cork.bytes());
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
    fn push(&mut self, message: Message) {
        let Some(upgraded) = &mut self.upgraded else {
            return self.cork.push(message);
        };
        let form = upgraded.peer.form();
        if form == Form::Plain {
            return self.cork.push(message);
        }
        let (kind, payload) = crate::wit::parts(&message);
        if !deflate::encode(self.cork.bytes(), form, kind, payload) {
            // Context takeover: the session compresses with its own context. It is not
            // closed (the caller checked), so sending cannot fail.
            let _ = match &message {
                Message::Text(text) => upgraded.session.send_text(text),
                Message::Binary(data) => upgraded.session.send_binary(data),
            };
            let before = self.cork.bytes().len();
            upgraded.session.poll_transmit(self.cork.bytes());
            deflate::count(payload.len(), self.cork.bytes().len() - before);
        }
    }

    /// Queues the automatic answer to `message`, if it has one; returns whether it had.
    pub fn auto_respond(&mut self, message: &Message) -> bool {
        let Some(auto) = self.auto_responses.iter().find(|a| a.answers(message)) else {
            return false;
        };
        if self.is_closed() {
            return true;
        }
        // A flood of small messages must not queue as many large answers: the answer
        // is held to the bound like any send (and dropped, counted, past it).
        if self.fits(auto.frame.len()) {
            self.cork.bytes().extend_from_slice(&auto.frame);
        } else {
            self.count_drop();
        }
        true
    }

    pub fn set_alarm(&mut self, after: Duration) {
        if !self.is_closed() {
            self.alarm = Some(Instant::now() + after.min(MAX_ALARM));
        }
    }

    pub fn cancel_alarm(&mut self) {
        self.alarm = None;
    }

    /// Whether `len` more bytes for this connection fit, counting what waits for it and
    /// what the callback sent: the same rule as for other connections' frames
    /// ([`peer::room`]).
    fn fits(&self, len: usize) -> bool {
        let held = self.peer().map_or(0, |peer| peer.queued()) + self.cork.len();
        peer::room(held, len, self.limits.max_backpressure).is_ok()
    }

    /// Counts a message to this connection dropped for backpressure.
    fn count_drop(&self) {
        match self.peer() {
            Some(peer) => peer.count_drop(),
            None => METRICS.dropped.inc(),
        }
    }

    /// `send`: queues a message to this connection, behind what the callback sent before.
    pub fn send(&mut self, message: Message) -> Result<(), SendError> {
        if self.is_closed() {
            return Err(SendError::Closed);
        }
        if !self.fits(crate::wit::parts(&message).1.len()) {
            self.count_drop();
            return Err(SendError::Backpressure);
        }
        self.push(message);
        Ok(())
    }

    /// Who `to` (an id as a guest wrote it) is, `None` for nobody.
    pub fn target(&self, to: &str) -> Option<Target> {
        let id = Id::parse(to)?;
        if id == self.id {
            return Some(Target::Me);
        }
        if id.node() != self.bus.node() {
            return Some(Target::There(self.bus.cluster().cloned(), id));
        }
        self.bus.registry.get(id).map(Target::Here)
    }

    /// `send-to` a connection of this runner.
    pub fn send_here(&mut self, peer: Arc<Peer>, message: Message) -> Result<(), SendError> {
        let (kind, payload) = crate::wit::into_parts(message);
        let mut outgoing = Outgoing::new(kind, payload);
        if peer.deliver(outgoing.frame(peer.form()))? {
            self.delivered.push(peer);
        }
        METRICS.deliveries.inc();
        Ok(())
    }

    fn topic_ok(&self, topic: &str) -> Result<(), TopicError> {
        if topic.is_empty() || topic.len() > self.limits.guest.max_topic_len as usize {
            return Err(TopicError::BadName);
        }
        Ok(())
    }

    fn is_subscribed(&self, topic: &str) -> bool {
        self.topics.iter().any(|t| **t == *topic)
    }

    pub fn subscribe(&mut self, topic: String) -> Result<(), TopicError> {
        self.topic_ok(&topic)?;
        if self.is_subscribed(&topic) {
            return Ok(());
        }
        if self.topics.len() >= self.limits.guest.max_topics as usize {
            return Err(TopicError::TooMany);
        }
        if let Some(peer) = self.peer() {
            self.bus.subscribe(&topic, peer);
        }
        self.topics.push(topic.into_boxed_str());
        Ok(())
    }

    pub fn unsubscribe(&mut self, topic: &str) -> bool {
        let Some(at) = self.topics.iter().position(|t| **t == *topic) else {
            return false;
        };
        self.topics.swap_remove(at);
        self.forget_room(topic);
        if let Some(peer) = self.peer() {
            self.bus.unsubscribe(topic, peer);
        }
        true
    }

    /// `publish`: to every subscriber of `topic` on every runner; returns how many here
    /// took it (this connection included, with `include_self`), and the message's position
    /// in the topic's history if it has one.
    pub fn publish(
        &mut self,
        topic: &str,
        message: Message,
        include_self: bool,
    ) -> (u32, Option<Position>) {
        let own = self.peer().cloned();
        let (kind, payload) = crate::wit::into_parts(message);
        let mut outgoing = Outgoing::new(kind, payload);
        let live = include_self && self.is_live(topic) && !self.is_closed();
        // In a topic with history every subscriber gets the offsets in order, this one too:
        // its copy joins its queue with the others' (under the topic's lock), after what
        // this callback sent so far, instead of following with the cork.
        let in_order = live && own.is_some() && self.bus.has_history(topic);
        if let (true, Some(peer)) = (in_order, &own) {
            self.queue_cork(peer);
        }
        let skip = if in_order { None } else { own.as_ref() };
        let (mut queued, position) =
            self.bus
                .publish(topic, &mut outgoing, skip, &mut self.delivered);
        METRICS.publishes.inc();
        METRICS.deliveries.add(u64::from(queued));
        // Our own copy goes with our other sends, in order, held to the bound as they are.
        if live && !in_order {
            let form = own.as_ref().map_or(Form::Plain, |peer| peer.form());
            let frame = outgoing.frame(form);
            if self.fits(frame.len()) {
                let cork = self.cork.bytes();
                frame.parts().for_each(|part| cork.extend_from_slice(part));
                queued = queued.saturating_add(1);
            } else {
                self.count_drop();
            }
        }
        (queued, position)
    }

    /// Subscribers of `topic` on every runner.
    pub fn subscribers(&self, topic: &str) -> u64 {
        let mut count = self.bus.subscribers(topic);
        // Before the upgrade our own subscriptions are not in the registry yet, nor one
        // still replaying its history.
        if self.is_subscribed(topic) && (self.upgraded.is_none() || !self.is_live(topic)) {
            count += 1;
        }
        count
    }

    pub fn attachment(&self) -> &[u8] {
        &self.attachment
    }

    pub fn set_attachment(&mut self, data: Vec<u8>) -> Result<(), TooLarge> {
        let max = self.limits.guest.max_attachment;
        if data.len() > max as usize {
            return Err(TooLarge { max });
        }
        self.attachment = data;
        Ok(())
    }

    pub fn set_auto_response(
        &mut self,
        request: &Message,
        response: &Message,
    ) -> Result<(), AutoResponseError> {
        let max = self.limits.guest.max_auto_response_size as usize;
        let len = |message: &Message| crate::wit::parts(message).1.len();
        if len(request) > max || len(response) > max {
            return Err(AutoResponseError::TooLarge);
        }
        let auto = AutoResponse::new(request, response);
        let autos = &mut self.auto_responses;
        match autos.iter().position(|a| a.answers(request)) {
            Some(at) => autos[at] = auto,
            None if autos.len() >= self.limits.guest.max_auto_responses as usize => {
                return Err(AutoResponseError::TooMany);
            }
            None => autos.push(auto),
        }
        Ok(())
    }

    pub fn clear_auto_response(&mut self, request: &Message) -> bool {
        let before = self.auto_responses.len();
        self.auto_responses.retain(|a| !a.answers(request));
        self.auto_responses.len() < before
    }
}

impl From<Refused> for SendError {
    fn from(refused: Refused) -> Self {
        match refused {
            Refused::Closed => SendError::Closed,
            Refused::Backpressure => SendError::Backpressure,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deflate::Form;
    use crate::transport::Transport;
    use tokio::io::AsyncReadExt;

    /// A peer whose socket's other end is returned, to read what it is sent.
    async fn peer_pair(id: Id) -> (Arc<Peer>, tokio::net::TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let client = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let (server, _) = listener.accept().await.expect("accept");
        let peer = Arc::new(Peer::new(id, 1 << 20, false, Form::Plain));
        peer.attach(Transport::Plain(server)).expect("attach");
        (peer, client)
    }

    #[tokio::test]
    async fn going_idle_writes_what_was_delivered_to_others() {
        let history = crate::settings::HistoryLimits {
            max_messages: 10,
            topic_bytes: 1 << 20,
            max_bytes: 1 << 20,
        };
        let store = wsbox_store::Store::open(wsbox_store::Config::default()).expect("store");
        let histories = crate::history::Histories::new(history, store, true);
        let bus = Arc::new(Bus::new(1, histories));
        let limits = AppLimits {
            guest: wsbox::app::Limits::new(8, 64, 1024, 4, 1024),
            max_backpressure: 1 << 20,
        };
        let mut state = State::new(Id::random(1).expect("id"), bus, limits);
        let (other, mut client) = peer_pair(Id::random(1).expect("id")).await;
        let frame = crate::cork::Frame::whole(bytes::Bytes::from_static(b"\x82\x02hi"));
        // A callback delivered to `other`; the caller must flush it (its queue was empty).
        assert_eq!(other.deliver(&frame), Ok(true));
        state.delivered.push(other.clone());
        // The instance goes (a reload, before the read's next callback).
        state.shrink();
        let mut got = [0; 4];
        tokio::time::timeout(Duration::from_secs(2), client.read_exact(&mut got))
            .await
            .expect("the delivery was written when the state went idle")
            .expect("read");
        assert_eq!(&got, b"\x82\x02hi");
    }
}
