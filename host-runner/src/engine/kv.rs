//! The `store` interface (`wit/store.wit`) the runner gives guests: the runner's store
//! (`wsbox_store`, `--data-dir`), one namespace per name a guest picks. Reads answer at
//! once; writes wait, on the connection's fiber, for the disk commit that holds them.

use std::time::Duration;

use super::StoreData;
use crate::wit::bindings::wsbox::websocket::store::{Host, StoreError};
use wsbox_store::{Error, Store};

impl From<Error> for StoreError {
    fn from(error: Error) -> Self {
        match error {
            Error::BadKey => StoreError::BadKey,
            Error::TooLarge => StoreError::TooLarge,
            Error::Quota => StoreError::Quota,
            Error::Full => StoreError::Full,
            Error::NotANumber => StoreError::NotANumber,
            Error::Overflow => StoreError::Overflow,
            Error::Unavailable(_) => StoreError::Unavailable,
        }
    }
}

impl StoreData {
    /// The store, for a namespace a guest may use: the runner's own start with NUL.
    fn kv(&self, namespace: &str) -> Result<Store, StoreError> {
        if namespace.starts_with('\0') {
            return Err(StoreError::BadKey);
        }
        Ok(self.state.store().clone())
    }
}

fn ttl(ms: Option<u64>) -> Option<Duration> {
    ms.map(Duration::from_millis)
}

impl Host for StoreData {
    fn get(&mut self, namespace: String, key: String) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.kv(&namespace)?.get(&namespace, &key)?)
    }

    async fn set(
        &mut self,
        namespace: String,
        key: String,
        value: Vec<u8>,
        ttl_ms: Option<u64>,
    ) -> Result<(), StoreError> {
        let write = self
            .kv(&namespace)?
            .set(&namespace, &key, value, ttl(ttl_ms));
        Ok(write.await?)
    }

    async fn delete(&mut self, namespace: String, key: String) -> Result<bool, StoreError> {
        let write = self.kv(&namespace)?.delete(&namespace, &key);
        Ok(write.await?)
    }

    fn keys(
        &mut self,
        namespace: String,
        prefix: String,
        after: Option<String>,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        let store = self.kv(&namespace)?;
        Ok(store.list(&namespace, &prefix, after.as_deref(), limit)?)
    }

    async fn increment(
        &mut self,
        namespace: String,
        key: String,
        delta: i64,
    ) -> Result<i64, StoreError> {
        let write = self.kv(&namespace)?.increment(&namespace, &key, delta);
        Ok(write.await?)
    }

    async fn compare_and_swap(
        &mut self,
        namespace: String,
        key: String,
        expected: Option<Vec<u8>>,
        new: Option<Vec<u8>>,
        ttl_ms: Option<u64>,
    ) -> Result<bool, StoreError> {
        let store = self.kv(&namespace)?;
        let write = store.compare_and_swap(&namespace, &key, expected, new, ttl(ttl_ms));
        Ok(write.await?)
    }
}
