//! Topics' persisted message logs: one epoch per topic, records by offset.
//!
//! A topic keeps the epoch of its latest append. A record of another epoch means the topic's
//! log started over (the runner decides what an epoch is), so the old records go and the new
//! epoch is kept; a trim names the epoch it was computed for and is ignored under another.

use std::ops::RangeInclusive;

use bytes::Bytes;
use redb::{Database, ReadableDatabase, ReadableTable};

use crate::HistoryRecord;
use crate::error::{Error, Fail, unavailable};
use crate::format::{HISTORY, TOPICS, decode_record, encode_record, entry_bytes};
use crate::writer::Txn;

/// A topic's row: (epoch, bytes, records).
type Row = (u64, u64, u64);

/// Every offset of `topic`.
fn all(topic: &str) -> RangeInclusive<(&str, u64)> {
    (topic, 0)..=(topic, u64::MAX)
}

/// Bytes a stored record is counted for (its value is a 9-byte header and the payload).
fn stored_bytes(topic: &str, stored: &[u8]) -> u64 {
    entry_bytes(topic.len(), stored.len().saturating_sub(9))
}

/// Stores `record`; `false` if it would take the store past `max_bytes` (nothing changed).
pub(crate) fn append(t: &mut Txn<'_>, topic: &str, record: &HistoryRecord) -> Result<bool, Fail> {
    let mut row: Option<Row> = t.topics.get(topic)?.map(|r| r.value());
    if let Some((epoch, _, _)) = row
        && epoch != record.epoch
    {
        drop_records(t, topic, all(topic))?;
        row = Some((record.epoch, 0, 0));
    }
    let (_, mut bytes, mut records) = row.unwrap_or((record.epoch, 0, 0));
    let old = t
        .history
        .get((topic, record.offset))?
        .map(|v| stored_bytes(topic, v.value()));
    let new = entry_bytes(topic.len(), record.payload.len());
    let growth = new.saturating_sub(old.unwrap_or(0));
    if t.totals.bytes + growth > t.limits.max_bytes {
        return Ok(false);
    }
    let value = encode_record(record.at_ms, record.binary, &record.payload);
    t.history.insert((topic, record.offset), value.as_slice())?;
    bytes = (bytes + new).saturating_sub(old.unwrap_or(0));
    records += u64::from(old.is_none());
    t.totals.bytes = (t.totals.bytes + new).saturating_sub(old.unwrap_or(0));
    t.totals.records += u64::from(old.is_none());
    if t.topics
        .insert(topic, (record.epoch, bytes, records))?
        .is_none()
    {
        t.totals.topics += 1;
    }
    Ok(true)
}

/// Drops the records of `topic` below `first_kept_offset`, if the topic is at `epoch`.
pub(crate) fn trim(
    t: &mut Txn<'_>,
    topic: &str,
    epoch: u64,
    first_kept_offset: u64,
) -> Result<(), Fail> {
    let row: Option<Row> = t.topics.get(topic)?.map(|r| r.value());
    if row.is_some_and(|(e, _, _)| e == epoch) && first_kept_offset > 0 {
        drop_records(t, topic, (topic, 0)..=(topic, first_kept_offset - 1))?;
    }
    Ok(())
}

/// Drops the whole log of `topic`, and the topic.
pub(crate) fn drop_topic(t: &mut Txn<'_>, topic: &str) -> Result<(), Fail> {
    drop_records(t, topic, all(topic))?;
    if t.topics.remove(topic)?.is_some() {
        t.totals.topics = t.totals.topics.saturating_sub(1);
    }
    Ok(())
}

/// Removes the records in `range` and takes them off the topic's row and the totals.
fn drop_records(
    t: &mut Txn<'_>,
    topic: &str,
    range: RangeInclusive<(&str, u64)>,
) -> Result<(), Fail> {
    let (mut bytes, mut records) = (0u64, 0u64);
    for entry in t.history.extract_if(range, |_, _| true)? {
        let (_, v) = entry?;
        bytes += stored_bytes(topic, v.value());
        records += 1;
    }
    if records == 0 {
        return Ok(());
    }
    t.totals.bytes = t.totals.bytes.saturating_sub(bytes);
    t.totals.records = t.totals.records.saturating_sub(records);
    let row: Option<Row> = t.topics.get(topic)?.map(|r| r.value());
    if let Some((epoch, b, r)) = row {
        t.topics.insert(
            topic,
            (epoch, b.saturating_sub(bytes), r.saturating_sub(records)),
        )?;
    }
    Ok(())
}

/// The committed log of `topic`: its epoch and records, offsets ascending.
pub(crate) fn load(db: &Database, topic: &str) -> Result<Option<(u64, Vec<HistoryRecord>)>, Error> {
    let tx = db.begin_read().map_err(unavailable)?;
    let topics = tx.open_table(TOPICS).map_err(unavailable)?;
    let Some((epoch, _, _)) = topics.get(topic).map_err(unavailable)?.map(|r| r.value()) else {
        return Ok(None);
    };
    let history = tx.open_table(HISTORY).map_err(unavailable)?;
    let mut records = Vec::new();
    for entry in history.range(all(topic)).map_err(unavailable)? {
        let (k, v) = entry.map_err(unavailable)?;
        let (at_ms, binary, payload) = decode_record(v.value()).ok_or_else(|| {
            Error::Unavailable(format!(
                "a record of topic {topic:?} is damaged; the file may be corrupt"
            ))
        })?;
        records.push(HistoryRecord {
            epoch,
            offset: k.value().1,
            at_ms,
            binary,
            payload: Bytes::copy_from_slice(payload),
        });
    }
    Ok(Some((epoch, records)))
}

/// Every topic with a stored log (possibly empty after a trim), in byte order.
pub(crate) fn topics(db: &Database) -> Result<Vec<String>, Error> {
    let tx = db.begin_read().map_err(unavailable)?;
    let topics = tx.open_table(TOPICS).map_err(unavailable)?;
    let mut names = Vec::new();
    for entry in topics.iter().map_err(unavailable)? {
        let (k, _) = entry.map_err(unavailable)?;
        names.push(k.value().to_owned());
    }
    Ok(names)
}
