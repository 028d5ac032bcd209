//! The `connection` interface the runner gives guests: each function acts at once on the
//! calling connection's [`Conn`] and the [`Bus`](crate::bus::Bus), and never
//! waits, except `send-to` and `close-other` to another runner's connection: they wait for
//! its answer through the cluster.

use std::sync::Arc;
use std::time::Duration;

use super::SandboxState;
use super::bindings::wsbox::websocket::connection::{
    AutoResponseError, Host, Id, RequestInfo, SendError, TooLarge, TopicError,
};
use super::bindings::wsbox::websocket::types::{self, Message};
use crate::cluster::wire::{Request, Status};
use crate::cluster::{Cluster, Unreachable};
use crate::conn::{AutoResponse, Conn};
use crate::deflate::{Form, Outgoing};
use crate::metrics::METRICS;
use crate::peer::{Peer, Refused};
use crate::registry;

impl types::Host for SandboxState {}

/// Has the node that holds `id` do `request`, through the cluster; an id of another node
/// without a cluster is no open connection's. (Takes the cluster, not the [`Conn`], which
/// may not be shared across the wait.)
async fn route(
    cluster: Option<Arc<Cluster>>,
    id: registry::Id,
    request: Request<'_>,
) -> Result<(), SendError> {
    let cluster = cluster.ok_or(SendError::Gone)?;
    match cluster.route(id, request).await {
        Ok(Status::Ok) => Ok(()),
        Ok(Status::Closed) => Err(SendError::Closed),
        Ok(Status::Gone) => Err(SendError::Gone),
        Ok(Status::Backpressure) => Err(SendError::Backpressure),
        Err(Unreachable) => Err(SendError::Unreachable),
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

impl Conn {
    /// Queues a message to this connection, behind what the callback sent before.
    fn send_self(&mut self, message: Message) -> Result<(), SendError> {
        if self.is_closed() {
            return Err(SendError::Closed);
        }
        let waiting = self.socket.as_ref().map_or(0, |s| s.peer.queued());
        if waiting + self.cork.len() > self.limits.max_backpressure {
            if let Some(socket) = &self.socket {
                socket.peer.count_drop();
            }
            return Err(SendError::Backpressure);
        }
        self.push(message);
        Ok(())
    }

    fn topic_ok(&self, topic: &str) -> Result<(), TopicError> {
        if topic.is_empty() || topic.len() > self.limits.max_topic_len as usize {
            return Err(TopicError::BadName);
        }
        Ok(())
    }

    fn peer(&self) -> Option<&Arc<Peer>> {
        self.socket.as_ref().map(|s| &s.peer)
    }

    /// Whether `id` (as a guest wrote it) is this connection's, registered yet or not.
    fn is_named(&self, id: &str) -> bool {
        registry::Id::parse(id) == Some(self.id)
    }

    fn is_subscribed(&self, topic: &str) -> bool {
        self.topics.iter().any(|t| **t == *topic)
    }
}

impl Host for SandboxState {
    fn max_topics(&mut self) -> u32 {
        self.conn.limits.max_topics
    }

    fn max_topic_len(&mut self) -> u32 {
        self.conn.limits.max_topic_len
    }

    fn max_attachment(&mut self) -> u32 {
        self.conn.limits.max_attachment
    }

    fn max_auto_responses(&mut self) -> u32 {
        self.conn.limits.max_auto_responses
    }

    fn max_auto_response_size(&mut self) -> u32 {
        self.conn.limits.max_auto_response_size
    }

    fn self_id(&mut self) -> Id {
        self.conn.id.to_string()
    }

    fn request(&mut self) -> RequestInfo {
        let request = &self.conn.request;
        RequestInfo {
            path: request.path.clone(),
            query: request.query.clone(),
            headers: request.headers.clone(),
            protocol: request.protocol.clone(),
        }
    }

    fn send(&mut self, msg: Message) -> Result<(), SendError> {
        self.conn.send_self(msg)
    }

    async fn send_to(&mut self, to: Id, msg: Message) -> Result<(), SendError> {
        let conn = &mut self.conn;
        if conn.is_named(&to) {
            return conn.send_self(msg);
        }
        let id = registry::Id::parse(&to).ok_or(SendError::Gone)?;
        if id.node() != conn.bus.node() {
            let (kind, data) = crate::cork::parts(&msg);
            let cluster = conn.bus.cluster().cloned();
            return route(cluster, id, Request::Send(id, kind, data)).await;
        }
        let peer = conn.bus.registry.get(id).ok_or(SendError::Gone)?;
        let (kind, payload) = crate::cork::parts(&msg);
        let mut outgoing = Outgoing::new(kind, payload);
        if peer.deliver(outgoing.frame(peer.form()))? {
            conn.delivered.push(peer);
        }
        METRICS.deliveries.inc();
        Ok(())
    }

    fn close(&mut self, code: u16, reason: String) {
        self.conn.close(code, &reason);
    }

    async fn close_other(&mut self, to: Id, code: u16, reason: String) -> Result<(), SendError> {
        let conn = &mut self.conn;
        if conn.is_named(&to) {
            conn.close(code, &reason);
            return Ok(());
        }
        let id = registry::Id::parse(&to).ok_or(SendError::Gone)?;
        if id.node() != conn.bus.node() {
            let cluster = conn.bus.cluster().cloned();
            return route(cluster, id, Request::Close(id, code, &reason)).await;
        }
        let peer = conn.bus.registry.get(id).ok_or(SendError::Gone)?;
        Ok(peer.request_close(code, reason)?)
    }

    fn subscribe(&mut self, topic: String) -> Result<(), TopicError> {
        let conn = &mut self.conn;
        conn.topic_ok(&topic)?;
        if conn.is_subscribed(&topic) {
            return Ok(());
        }
        if conn.topics.len() >= conn.limits.max_topics as usize {
            return Err(TopicError::TooMany);
        }
        if let Some(peer) = conn.peer() {
            conn.bus.subscribe(&topic, peer);
        }
        conn.topics.push(topic.into_boxed_str());
        Ok(())
    }

    fn unsubscribe(&mut self, topic: String) -> bool {
        let conn = &mut self.conn;
        let Some(at) = conn.topics.iter().position(|t| **t == *topic) else {
            return false;
        };
        conn.topics.swap_remove(at);
        if let Some(peer) = conn.peer() {
            conn.bus.unsubscribe(&topic, peer);
        }
        true
    }

    fn topics(&mut self) -> Vec<String> {
        self.conn.topics.iter().map(|t| t.to_string()).collect()
    }

    fn publish(&mut self, topic: String, msg: Message, include_self: bool) -> u32 {
        let conn = &mut self.conn;
        let own = conn.peer().cloned();
        let (kind, payload) = crate::cork::parts(&msg);
        let mut outgoing = Outgoing::new(kind, payload);
        let mut queued = conn
            .bus
            .publish(&topic, &mut outgoing, own.as_ref(), &mut conn.delivered);
        METRICS.publishes.inc();
        METRICS.deliveries.add(u64::from(queued));
        // Our own copy goes with our other sends, in order.
        if include_self && conn.is_subscribed(&topic) && !conn.is_closed() {
            let form = own.as_ref().map_or(Form::Plain, |peer| peer.form());
            conn.cork.bytes().extend_from_slice(outgoing.frame(form));
            queued = queued.saturating_add(1);
        }
        queued
    }

    fn subscribers(&mut self, topic: String) -> u32 {
        let conn = &self.conn;
        let mut count = conn.bus.subscribers(&topic);
        // Before the upgrade our own subscriptions are not in the registry yet.
        if conn.socket.is_none() && conn.is_subscribed(&topic) {
            count += 1;
        }
        u32::try_from(count).unwrap_or(u32::MAX)
    }

    fn attachment(&mut self) -> Vec<u8> {
        self.conn.attachment.clone()
    }

    fn set_attachment(&mut self, data: Vec<u8>) -> Result<(), TooLarge> {
        let max = self.conn.limits.max_attachment;
        if data.len() > max as usize {
            return Err(TooLarge { max });
        }
        self.conn.attachment = data;
        Ok(())
    }

    fn set_alarm(&mut self, after_ms: u64) {
        self.conn.set_alarm(Duration::from_millis(after_ms));
    }

    fn cancel_alarm(&mut self) {
        self.conn.alarm = None;
    }

    fn set_auto_response(
        &mut self,
        request: Message,
        response: Message,
    ) -> Result<(), AutoResponseError> {
        let conn = &mut self.conn;
        let max = conn.limits.max_auto_response_size as usize;
        let len = |message: &Message| crate::cork::parts(message).1.len();
        if len(&request) > max || len(&response) > max {
            return Err(AutoResponseError::TooLarge);
        }
        let auto = AutoResponse::new(&request, &response);
        match conn.auto_responses.iter().position(|a| a.answers(&request)) {
            Some(at) => conn.auto_responses[at] = auto,
            None if conn.auto_responses.len() >= conn.limits.max_auto_responses as usize => {
                return Err(AutoResponseError::TooMany);
            }
            None => conn.auto_responses.push(auto),
        }
        Ok(())
    }

    fn clear_auto_response(&mut self, request: Message) -> bool {
        let autos = &mut self.conn.auto_responses;
        let before = autos.len();
        autos.retain(|a| !a.answers(&request));
        autos.len() < before
    }
}
