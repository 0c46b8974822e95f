//! A keyed, thread-safe memo: the caches a sweep's points share (compiled networks,
//! baseline work, analytical layer plans).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, OnceLock};

/// Values by key, each kept from the first build to finish. A caller that finds its value
/// being built builds it too instead of waiting: a rayon worker that waits can neither help
/// the builder's parallel work nor be sure not to deadlock, since while the builder's inner
/// parallel loop waits for a stolen task it may itself be handed, by work stealing, a task
/// that needs the very value it is building further down its stack. Builds are
/// deterministic, so which one is kept does not matter. A failed build is remembered as its
/// message.
#[derive(Debug)]
pub struct Memo<K, V>(Mutex<HashMap<K, Slot<V>>>);

type Slot<V> = Arc<OnceLock<Result<Arc<V>, String>>>;

impl<K, V> Default for Memo<K, V> {
    fn default() -> Self {
        Memo(Mutex::new(HashMap::new()))
    }
}

impl<K: Eq + Hash, V> Memo<K, V> {
    /// The value kept for `key`, if one was built.
    pub fn get(&self, key: &K) -> Option<Result<Arc<V>, String>> {
        let map = self.0.lock().expect("the memo lock is not poisoned");
        map.get(key)?.get().cloned()
    }

    /// The value for `key`: the kept one, or `build`'s (kept unless another build finished
    /// first).
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
        if let Some(v) = slot.get() {
            return v.clone();
        }
        // Built outside the cell, so that nothing ever waits on a build in progress.
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
        assert_eq!(*m.get(&1).unwrap().unwrap(), 7);
        assert_eq!(m.get(&2).unwrap().unwrap_err(), "no");
        assert!(m.get(&3).is_none());
    }

    /// A build that needs its own key (as a rayon worker may, handed a task by work
    /// stealing while it builds) builds it again rather than waiting for itself; the build
    /// that finished first is kept.
    #[test]
    fn a_build_that_needs_its_own_key_does_not_wait_for_itself() {
        let m: Memo<u32, u32> = Memo::default();
        let outer = m.get_or_build(1, || Ok(*m.get_or_build(1, || Ok(5)).unwrap() + 1));
        assert_eq!(*outer.unwrap(), 5);
        assert_eq!(*m.get_or_build(1, || Ok(9)).unwrap(), 5);
    }
}
