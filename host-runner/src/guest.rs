//! The guest side of one open WebSocket: live (an instance whose store holds the
//! connection's [`State`]) or hibernated (the `State` alone, no instance). Hibernating moves
//! the `State` out of the store and drops the instance; waking moves it into a fresh one.
//! Everything the host does for a connection acts on the `State`, so it works the same
//! either way; only guest calls need an instance.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::time::Instant;
use tracing::debug;

use crate::engine::Sandbox;
use crate::server::{NoSandbox, Server};
use crate::state::State;

// Not boxed: most connections spend most of their life hibernated, in the large variant.
#[allow(clippy::large_enum_variant)]
pub enum Guest {
    Live(Sandbox),
    Hibernated(State),
}

impl Guest {
    pub fn state(&mut self) -> &mut State {
        match self {
            Guest::Live(sandbox) => sandbox.state(),
            Guest::Hibernated(conn) => conn,
        }
    }

    pub fn live(&mut self) -> Option<&mut Sandbox> {
        match self {
            Guest::Live(sandbox) => Some(sandbox),
            Guest::Hibernated(_) => None,
        }
    }

    /// Drops the instance, keeping the connection. Its linear memory and fiber stack go
    /// back to the pool, its share of the memory budget to the others.
    pub fn hibernate(&mut self) {
        if let Guest::Live(sandbox) = self {
            let conn = sandbox.state();
            // An empty `State` takes its place in the store being dropped.
            let mut kept = conn.placeholder();
            std::mem::swap(conn, &mut kept);
            // The sandbox's blocks go back to their arenas as it drops, bypassing the
            // thread's cache (see `crate::alloc`).
            *self = Guest::Hibernated(kept);
            if let Guest::Hibernated(conn) = self {
                conn.shrink();
            }
        }
    }

    /// Makes sure the guest has a live instance: hibernated, it gets a fresh one of the
    /// current version (waiting up to `--handshake-timeout` when memory or instances run
    /// short). Returns whether an instance was made.
    pub async fn wake(
        &mut self,
        server: &Arc<Server>,
        address: SocketAddr,
    ) -> Result<bool, NoSandbox> {
        let patience = server.settings.handshake_timeout;
        self.wake_within(server, address, patience).await
    }

    /// [`Self::wake`], waiting at most `patience` for memory or an instance.
    pub async fn wake_within(
        &mut self,
        server: &Arc<Server>,
        address: SocketAddr,
        patience: std::time::Duration,
    ) -> Result<bool, NoSandbox> {
        let Guest::Hibernated(conn) = self else {
            return Ok(false);
        };
        let started = Instant::now();
        let mut sandbox = server.sandbox(address, patience).await?;
        // The fresh instance's own, unused `State` is dropped with the old variant.
        std::mem::swap(sandbox.state(), conn);
        debug!(
            peer = %address,
            id = %sandbox.state().id(),
            wake_us = started.elapsed().as_micros() as u64,
            "woke"
        );
        *self = Guest::Live(sandbox);
        Ok(true)
    }
}
