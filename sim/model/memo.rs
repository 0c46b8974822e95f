//! A keyed, build-once, thread-safe memo: the caches a sweep's points share (compiled
//! networks, baseline work, analytical layer plans).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, OnceLock};

/// Values by key, each built once; threads wanting a value being built wait for it. A failed
/// build is remembered as its message.
#[derive(Debug)]
pub struct Memo<K, V>(Mutex<HashMap<K, Slot<V>>>);

type Slot<V> = Arc<OnceLock<Result<Arc<V>, String>>>;

impl<K, V> Default for Memo<K, V> {
    fn default() -> Self {
        Memo(Mutex::new(HashMap::new()))
    }
}

impl<K: Eq + Hash, V> Memo<K, V> {
    /// The value for `key`, built by `build` the first time.
    pub fn get_or_build(
        &self,
        key: K,
        build: impl FnOnce() -> Result<V, String>,
    ) -> Result<Arc<V>, String> {
        // The map lock is held only to find the slot, not while building.
        let slot = self
            .0
            .lock()
            .expect("the memo lock is not poisoned")
            .entry(key)
            .or_default()
            .clone();
        slot.get_or_init(|| build().map(Arc::new)).clone()
    }

    /// The value for `key` if it is built; otherwise `build`'s, kept for the next caller
    /// unless another thread is building it meanwhile. Unlike [`Memo::get_or_build`] it
    /// never waits for another thread's build: for values built from finer memos, where a
    /// second builder shares the work instead of idling (a thread of rayon's pool that waits
    /// cannot help the builder's parallel work).
    pub fn get_or_share(
        &self,
        key: K,
        build: impl FnOnce() -> Result<V, String>,
    ) -> Result<Arc<V>, String> {
        let slot = self
            .0
            .lock()
            .expect("the memo lock is not poisoned")
            .entry(key)
            .or_default()
            .clone();
        if let Some(v) = slot.get() {
            return v.clone();
        }
        let v = build().map(Arc::new);
        slot.get_or_init(|| v).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_once_and_remembers_failures() {
        let m: Memo<u32, u32> = Memo::default();
        let mut calls = 0;
        assert_eq!(
            *m.get_or_build(1, || {
                calls += 1;
                Ok(7)
            })
            .unwrap(),
            7
        );
        assert_eq!(
            *m.get_or_build(1, || {
                calls += 1;
                Ok(8)
            })
            .unwrap(),
            7
        );
        assert_eq!(calls, 1);
        assert_eq!(m.get_or_build(2, || Err("no".into())).unwrap_err(), "no");
        assert_eq!(m.get_or_build(2, || Ok(3)).unwrap_err(), "no");
        // A shared build keeps the first value and reads a built one.
        assert_eq!(*m.get_or_share(3, || Ok(4)).unwrap(), 4);
        assert_eq!(*m.get_or_share(3, || Ok(5)).unwrap(), 4);
        assert_eq!(*m.get_or_build(1, || Ok(9)).unwrap(), 7);
        assert_eq!(*m.get_or_share(1, || Ok(9)).unwrap(), 7);
    }
}
