//! The flags of topics' histories (and, with them, what rooms remember).

use super::values::parse_size;
use crate::settings::HistoryLimits;

#[derive(Debug, clap::Args)]
pub struct RoomArgs {
    /// Most messages one topic's history keeps (a guest's `enable` asks for at most this
    /// many; at least 1).
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub history_max_messages: u32,

    /// Most bytes one topic's history keeps (payloads, plus 64 per message): its oldest
    /// messages go first, and a larger message is delivered but not kept.
    #[arg(long, value_name = "SIZE", default_value = "1MiB", value_parser = parse_size)]
    pub history_topic_bytes: u64,

    /// Most bytes every topic's history keeps together (host memory): a topic that
    /// publishes when they are all taken trims its own oldest, or keeps nothing.
    #[arg(long, value_name = "SIZE", default_value = "64MiB", value_parser = parse_size)]
    pub history_max_bytes: u64,
}

impl RoomArgs {
    pub fn history(&self) -> Result<HistoryLimits, String> {
        if self.history_max_messages == 0 {
            return Err("--history-max-messages must be at least 1".into());
        }
        let size = |value: u64, flag: &str| {
            usize::try_from(value).map_err(|_| format!("{flag} is too large"))
        };
        Ok(HistoryLimits {
            max_messages: self.history_max_messages,
            topic_bytes: size(self.history_topic_bytes, "--history-topic-bytes")?,
            max_bytes: size(self.history_max_bytes, "--history-max-bytes")?,
        })
    }
}
