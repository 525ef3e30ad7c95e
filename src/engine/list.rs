//! Lists: a double-ended queue of byte strings, so pushes and pops at
//! either end are O(1) and indexing is O(1) (LINDEX, LSET, LRANGE's start).

#![forbid(unsafe_code)]

use std::collections::VecDeque;

#[derive(Clone, Default, Debug, PartialEq, Eq)]
pub struct List {
    items: VecDeque<Box<[u8]>>,
}

impl List {
    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn get(&self, i: usize) -> Option<&[u8]> {
        self.items.get(i).map(|b| &**b)
    }

    /// Elements from index `start` on.
    pub fn iter_from(&self, start: usize) -> impl DoubleEndedIterator<Item = &[u8]> + '_ {
        self.items.range(start.min(self.items.len())..).map(|b| &**b)
    }

    pub fn push(&mut self, left: bool, value: &[u8]) {
        if left {
            self.items.push_front(value.into());
        } else {
            self.items.push_back(value.into());
        }
    }

    pub fn pop(&mut self, left: bool) -> Option<Box<[u8]>> {
        if left {
            self.items.pop_front()
        } else {
            self.items.pop_back()
        }
    }

    /// Replaces the element at `i` (which must exist).
    pub fn set(&mut self, i: usize, value: &[u8]) {
        self.items[i] = value.into();
    }

    /// Keeps the elements at `start..end` (clamped).
    pub fn trim(&mut self, start: usize, end: usize) {
        let end = end.min(self.items.len());
        if start >= end {
            self.items.clear();
            return;
        }
        self.items.truncate(end);
        self.items.drain(..start);
    }

    /// LREM: removes up to |count| elements equal to `value`, from the head
    /// if count > 0, from the tail if count < 0, all if 0; how many.
    pub fn remove(&mut self, count: i64, value: &[u8]) -> usize {
        let limit = if count == 0 { usize::MAX } else { count.unsigned_abs() as usize };
        let mut doomed = Vec::new();
        let matches = |(i, b): (usize, &[u8])| (b == value).then_some(i);
        if count >= 0 {
            doomed.extend(self.items.iter().map(|b| &**b).enumerate().filter_map(matches).take(limit));
        } else {
            doomed.extend(self.items.iter().map(|b| &**b).enumerate().rev().filter_map(matches).take(limit));
            doomed.reverse();
        }
        if doomed.is_empty() {
            return 0;
        }
        let mut next = doomed.iter().peekable();
        let mut i = 0usize;
        self.items.retain(|_| {
            let drop = next.peek().is_some_and(|&&d| d == i);
            if drop {
                next.next();
            }
            i += 1;
            !drop
        });
        doomed.len()
    }

    /// Bytes of heap this list holds, approximately.
    pub fn heap_bytes(&self) -> usize {
        self.items.capacity() * 16 + self.items.iter().map(|b| b.len().div_ceil(8) * 8 + 8).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> List {
        let mut l = List::default();
        for i in items {
            l.push(false, i.as_bytes());
        }
        l
    }

    fn items(l: &List) -> Vec<String> {
        l.iter_from(0).map(|b| String::from_utf8(b.to_vec()).unwrap()).collect()
    }

    #[test]
    fn remove_counts_from_either_end() {
        let mut l = list(&["a", "b", "a", "c", "a"]);
        assert_eq!(l.remove(-2, b"a"), 2);
        assert_eq!(items(&l), ["a", "b", "c"]);
        let mut l = list(&["a", "b", "a", "c", "a"]);
        assert_eq!(l.remove(1, b"a"), 1);
        assert_eq!(items(&l), ["b", "a", "c", "a"]);
        assert_eq!(l.remove(0, b"a"), 2);
        assert_eq!(items(&l), ["b", "c"]);
        assert_eq!(l.remove(0, b"zz"), 0);
    }

    #[test]
    fn trim_and_set() {
        let mut l = list(&["a", "b", "c", "d"]);
        l.trim(1, 3);
        assert_eq!(items(&l), ["b", "c"]);
        l.set(1, b"x");
        assert_eq!(items(&l), ["b", "x"]);
        l.trim(5, 9);
        assert!(l.is_empty());
    }
}
