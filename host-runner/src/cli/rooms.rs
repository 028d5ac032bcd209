//! The flags of what rooms remember: topics' histories (host memory) and the store on
//! disk (guests' key-value namespaces, and the histories' persisted copy).

use std::path::PathBuf;
use std::time::Duration;

use super::values::{parse_duration, parse_size};
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

    /// Where the store keeps guests' key-value namespaces and topics' histories
    /// (`store.redb`, created with the directory, mode 0700). `memory`: nothing outlives the
    /// runner. A directory another runner has open, or that holds a corrupt or newer store,
    /// stops the start.
    #[arg(
        long,
        value_name = "DIR|memory",
        default_value = "wsbox-data",
        env = "WSBOX_DATA_DIR"
    )]
    pub data_dir: String,

    /// Most bytes the store holds (keys, values, kept history; each entry counts 32 more):
    /// writes past it fail with `full`.
    #[arg(long, value_name = "SIZE", default_value = "1GiB", value_parser = parse_size)]
    pub data_max_bytes: u64,

    /// Most bytes one namespace holds: writes past it fail with `quota`.
    #[arg(long, value_name = "SIZE", default_value = "64MiB", value_parser = parse_size)]
    pub data_namespace_quota: u64,

    /// A namespace nobody read or wrote for this long is deleted; `0` keeps them forever.
    #[arg(long, value_name = "DURATION", default_value = "7d", value_parser = parse_duration)]
    pub data_idle: Duration,

    /// How long a write waits for others to share its disk commit (group commit): every
    /// acknowledged write is on disk; a longer window means fewer fsyncs and slower answers.
    /// At most 1s.
    #[arg(long, value_name = "DURATION", default_value = "2ms", value_parser = parse_duration)]
    pub data_commit_window: Duration,
}

impl RoomArgs {
    pub fn store(&self) -> Result<wsbox_store::Config, String> {
        if self.data_commit_window > Duration::from_secs(1) {
            return Err("--data-commit-window can be at most 1s".into());
        }
        let dir = match self.data_dir.as_str() {
            "memory" => None,
            "" => return Err("--data-dir is empty (a directory, or memory)".into()),
            dir => Some(PathBuf::from(dir)),
        };
        Ok(wsbox_store::Config {
            dir,
            max_bytes: self.data_max_bytes,
            namespace_quota: self.data_namespace_quota,
            idle_namespace: (!self.data_idle.is_zero()).then_some(self.data_idle),
            commit_window: self.data_commit_window,
        })
    }

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
