//! The `connection` interface the runner gives guests, translated onto the calling
//! connection's [`State`], which does the work (see `crate::state`). Every function acts
//! at once, except `send-to` and `close-other` to another runner's connection: they wait
//! for its answer through the cluster.

use std::sync::Arc;
use std::time::Duration;

use super::StoreData;
use crate::cluster::wire::{Command, Status};
use crate::cluster::{Cluster, Unreachable};
use crate::id;
use crate::state::Target;
use crate::wit::bindings::wsbox::websocket::connection::{
    AutoResponseError, Host, Id, RequestInfo, SendError, TooLarge, TopicError,
};
use crate::wit::bindings::wsbox::websocket::types::{self, Message};

impl types::Host for StoreData {}

/// Has the node that holds `id` do `command`, through the cluster; an id of another node
/// without a cluster is no open connection's. (Takes the cluster, not the [`State`], which
/// may not be shared across the wait.)
///
/// [`State`]: crate::state::State
async fn route(
    cluster: Option<Arc<Cluster>>,
    id: id::Id,
    command: Command<'_>,
) -> Result<(), SendError> {
    let cluster = cluster.ok_or(SendError::Gone)?;
    match cluster.route(id, command).await {
        Ok(Status::Ok) => Ok(()),
        Ok(Status::Closed) => Err(SendError::Closed),
        Ok(Status::Gone) => Err(SendError::Gone),
        Ok(Status::Backpressure) => Err(SendError::Backpressure),
        Err(Unreachable) => Err(SendError::Unreachable),
    }
}

impl Host for StoreData {
    fn max_topics(&mut self) -> u32 {
        self.state.limits().max_topics
    }

    fn max_topic_len(&mut self) -> u32 {
        self.state.limits().max_topic_len
    }

    fn max_attachment(&mut self) -> u32 {
        self.state.limits().max_attachment
    }

    fn max_auto_responses(&mut self) -> u32 {
        self.state.limits().max_auto_responses
    }

    fn max_auto_response_size(&mut self) -> u32 {
        self.state.limits().max_auto_response_size
    }

    fn self_id(&mut self) -> Id {
        self.state.id().to_string()
    }

    fn request(&mut self) -> RequestInfo {
        let request = self.state.request();
        RequestInfo {
            path: request.path.clone(),
            query: request.query.clone(),
            headers: request.headers.clone(),
            protocol: request.protocol.clone(),
        }
    }

    fn send(&mut self, msg: Message) -> Result<(), SendError> {
        self.state.send(msg)
    }

    async fn send_to(&mut self, to: Id, msg: Message) -> Result<(), SendError> {
        match self.state.target(&to).ok_or(SendError::Gone)? {
            Target::Me => self.state.send(msg),
            Target::Here(peer) => self.state.send_here(peer, msg),
            Target::There(cluster, id) => {
                let (kind, data) = crate::wit::parts(&msg);
                route(cluster, id, Command::Send(id, kind, data)).await
            }
        }
    }

    fn close(&mut self, code: u16, reason: String) {
        self.state.close(code, &reason);
    }

    async fn close_other(&mut self, to: Id, code: u16, reason: String) -> Result<(), SendError> {
        match self.state.target(&to).ok_or(SendError::Gone)? {
            Target::Me => {
                self.state.close(code, &reason);
                Ok(())
            }
            Target::Here(peer) => Ok(peer.request_close(code, reason)?),
            Target::There(cluster, id) => {
                route(cluster, id, Command::Close(id, code, &reason)).await
            }
        }
    }

    fn subscribe(&mut self, topic: String) -> Result<(), TopicError> {
        self.state.subscribe(topic)
    }

    fn unsubscribe(&mut self, topic: String) -> bool {
        self.state.unsubscribe(&topic)
    }

    fn topics(&mut self) -> Vec<String> {
        self.state.topics().iter().map(|t| t.to_string()).collect()
    }

    fn publish(&mut self, topic: String, msg: Message, include_self: bool) -> u32 {
        self.state.publish(&topic, msg, include_self).0
    }

    fn subscribers(&mut self, topic: String) -> u32 {
        u32::try_from(self.state.subscribers(&topic)).unwrap_or(u32::MAX)
    }

    fn attachment(&mut self) -> Vec<u8> {
        self.state.attachment().to_vec()
    }

    fn set_attachment(&mut self, data: Vec<u8>) -> Result<(), TooLarge> {
        self.state.set_attachment(data)
    }

    fn set_alarm(&mut self, after_ms: u64) {
        self.state.set_alarm(Duration::from_millis(after_ms));
    }

    fn cancel_alarm(&mut self) {
        self.state.cancel_alarm();
    }

    fn set_auto_response(
        &mut self,
        request: Message,
        response: Message,
    ) -> Result<(), AutoResponseError> {
        self.state.set_auto_response(&request, &response)
    }

    fn clear_auto_response(&mut self, request: Message) -> bool {
        self.state.clear_auto_response(&request)
    }
}
