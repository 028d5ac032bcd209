//! What every connection task shares: the compiled handler, the settings, the open
//! WebSockets and topics, and the shutdown notice.

use std::sync::Arc;

use crate::cli::Settings;
use crate::conn::AppLimits;
use crate::engine::Runtime;
use crate::registry::Registry;
use crate::shutdown::Shutdown;

pub struct Server {
    pub runtime: Arc<Runtime>,
    pub settings: Settings,
    pub shutdown: Shutdown,
    pub registry: Arc<Registry>,
}

impl Server {
    pub fn app_limits(&self) -> AppLimits {
        let settings = &self.settings;
        AppLimits {
            max_topics: settings.max_topics,
            max_topic_len: settings.max_topic_len,
            max_attachment: settings.max_attachment,
            max_backpressure: settings.max_backpressure,
        }
    }

    /// The protocol limits of every session.
    pub fn session_config(&self) -> wsbox::Config {
        let limit = |value: u64| usize::try_from(value).unwrap_or(usize::MAX);
        wsbox::Config::default()
            .max_frame_size(limit(self.settings.max_frame_size))
            .max_message_size(limit(self.settings.max_message_size))
    }
}
