//! One tenant's bounded queue: a `Mutex<VecDeque>` with its counters
//! under the same lock, and condition variables for the waiting side.
//! Bounded in items and in the bytes the queued items hold (each push
//! says what it weighs).
//!
//! Why not `std::sync::mpsc::sync_channel`: a capture thread delivering to
//! thousands of tenants touches each tenant's queue rarely, so every send
//! is a cache miss per line the queue keeps its state in. The channel
//! spreads its state over several cache-padded lines (head, tail, slot
//! stamps, waker) and preallocates every slot up front; here a send locks,
//! pushes and counts within one allocation's first lines, and the buffer
//! grows with the backlog (up to the bound) instead of being allocated
//! whole per tenant.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Counters of one queue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Items queued.
    pub frames: u64,
    /// Sum of the sizes given with queued items.
    pub bytes: u64,
    /// Items refused: queue full (non-blocking sender) or receiver gone.
    pub drops: u64,
}

/// Why [`Queue::push`] did not queue an item (the drop is counted).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PushError {
    /// The queue is at its bound and the push does not block.
    Full,
    /// The receiver is gone.
    Closed,
}

/// How much one queue holds: items, and the sum of their weights (an
/// item heavier than `bytes` alone is still taken into an empty queue).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueBound {
    /// Frames at most.
    pub frames: usize,
    /// Bytes of queued frames at most.
    pub bytes: u64,
}

/// Why a non-blocking receive returned no item.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TryRecvError {
    /// Nothing is queued now; more may come.
    #[error("nothing queued")]
    Empty,
    /// Nothing is queued and nothing will be: every sender is gone (the
    /// capture stopped, or the tenant was removed).
    #[error("the stream has ended")]
    Ended,
}

/// Why a receive with a deadline returned no item.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecvTimeoutError {
    /// The deadline passed with nothing queued; more may come.
    #[error("timed out")]
    Timeout,
    /// Nothing is queued and nothing will be: every sender is gone.
    #[error("the stream has ended")]
    Ended,
}

impl From<usize> for QueueBound {
    /// A bound in frames only.
    fn from(frames: usize) -> QueueBound {
        QueueBound {
            frames,
            bytes: u64::MAX,
        }
    }
}

#[derive(Debug)]
struct State<T> {
    items: VecDeque<(T, u64)>,
    /// Sum of the queued items' weights.
    weight: u64,
    stats: QueueStats,
    senders_gone: bool,
    receiver_gone: bool,
    recv_waiting: bool,
    /// A waiting receiver wants waking once the weight reaches this (0:
    /// at the first item).
    wake_at: u64,
    send_waiting: bool,
}

/// A bounded multi-producer, single-consumer queue.
#[derive(Debug)]
pub struct Queue<T> {
    state: Mutex<State<T>>,
    not_empty: Condvar,
    not_full: Condvar,
    bound: QueueBound,
}

impl<T> Queue<T> {
    /// An empty queue holding at most `bound`.
    pub fn new(bound: impl Into<QueueBound>) -> Queue<T> {
        let bound = bound.into();
        Queue {
            state: Mutex::new(State {
                items: VecDeque::new(),
                weight: 0,
                stats: QueueStats::default(),
                senders_gone: false,
                receiver_gone: false,
                recv_waiting: false,
                wake_at: 0,
                send_waiting: false,
            }),
            not_empty: Condvar::new(),
            not_full: Condvar::new(),
            bound: QueueBound {
                frames: bound.frames.max(1),
                bytes: bound.bytes,
            },
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // A panic elsewhere while holding the lock leaves consistent state
        // (every update is a single push, pop or counter change).
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `item`, counting `size` bytes in the stats and `weight`
    /// against the byte bound. When the queue is full, a non-`blocking`
    /// call drops it (counted) and returns `Full`; a `blocking` one waits
    /// for room. Returns `Closed` (counted as a drop) when the receiver is
    /// gone.
    pub fn push(&self, item: T, size: u64, weight: u64, blocking: bool) -> Result<(), PushError> {
        let mut s = self.lock();
        while !s.receiver_gone
            && (s.items.len() >= self.bound.frames
                || (!s.items.is_empty() && s.weight.saturating_add(weight) > self.bound.bytes))
        {
            if !blocking {
                s.stats.drops += 1;
                return Err(PushError::Full);
            }
            s.send_waiting = true;
            s = self.not_full.wait(s).unwrap_or_else(|e| e.into_inner());
        }
        if s.receiver_gone {
            s.stats.drops += 1;
            return Err(PushError::Closed);
        }
        s.items.push_back((item, weight));
        s.weight += weight;
        s.stats.frames += 1;
        s.stats.bytes += size;
        let wake = s.recv_waiting && s.weight >= s.wake_at;
        drop(s);
        if wake {
            self.not_empty.notify_one();
        }
        Ok(())
    }

    fn took(&self, s: &mut State<T>, weight: u64) {
        s.weight -= weight;
        if s.send_waiting {
            s.send_waiting = false;
            self.not_full.notify_all();
        }
    }

    /// The next item if one is queued.
    pub fn try_pop(&self) -> Result<T, TryRecvError> {
        let mut s = self.lock();
        match s.items.pop_front() {
            Some((item, w)) => {
                self.took(&mut s, w);
                Ok(item)
            }
            None if s.senders_gone => Err(TryRecvError::Ended),
            None => Err(TryRecvError::Empty),
        }
    }

    /// Waits for the next item until `deadline` (`None`: no limit).
    pub fn pop_until(&self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        let mut s = self.lock();
        loop {
            if let Some((item, w)) = s.items.pop_front() {
                self.took(&mut s, w);
                return Ok(item);
            }
            if s.senders_gone {
                return Err(RecvTimeoutError::Ended);
            }
            s.recv_waiting = true;
            s = match deadline {
                None => self.not_empty.wait(s).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left == Duration::ZERO {
                        s.recv_waiting = false;
                        return Err(RecvTimeoutError::Timeout);
                    }
                    self.not_empty
                        .wait_timeout(s, left)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
            s.recv_waiting = false;
        }
    }

    /// Waits until the queued weight reaches `bytes`, `deadline` passes,
    /// or every sender is gone (a consumer that writes in batches: it
    /// drains after this).
    pub fn wait_fill(&self, bytes: u64, deadline: Instant) {
        let mut s = self.lock();
        while s.weight < bytes && !s.senders_gone {
            let left = deadline.saturating_duration_since(Instant::now());
            if left == Duration::ZERO {
                break;
            }
            s.recv_waiting = true;
            s.wake_at = bytes;
            s = self
                .not_empty
                .wait_timeout(s, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
            s.recv_waiting = false;
            s.wake_at = 0;
        }
    }

    /// No more items will come: wakes a waiting receiver.
    pub fn close_senders(&self) {
        self.lock().senders_gone = true;
        self.not_empty.notify_all();
    }

    /// Nobody will read: later pushes are dropped, blocked ones return.
    pub fn close_receiver(&self) {
        let mut s = self.lock();
        s.receiver_gone = true;
        s.items.clear();
        s.weight = 0;
        drop(s);
        self.not_full.notify_all();
    }

    /// The queue's counters.
    pub fn stats(&self) -> QueueStats {
        self.lock().stats
    }

    /// What is queued now: `(items, weight)`.
    pub fn fill(&self) -> (usize, u64) {
        let s = self.lock();
        (s.items.len(), s.weight)
    }

    /// What the queue holds at most.
    pub fn bound(&self) -> QueueBound {
        self.bound
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn bounded_non_blocking_push_drops_and_counts() {
        let q = Queue::new(2);
        assert_eq!(q.push(1, 10, 10, false), Ok(()));
        assert_eq!(q.push(2, 10, 10, false), Ok(()));
        assert_eq!(q.push(3, 10, 10, false), Err(PushError::Full));
        assert_eq!(
            q.stats(),
            QueueStats {
                frames: 2,
                bytes: 20,
                drops: 1
            }
        );
        assert_eq!(q.try_pop(), Ok(1));
        assert_eq!(q.try_pop(), Ok(2));
        assert_eq!(q.try_pop(), Err(TryRecvError::Empty));
        q.close_senders();
        assert_eq!(q.try_pop(), Err(TryRecvError::Ended));
    }

    #[test]
    fn byte_bound_refuses_what_would_pass_it_but_takes_one_heavy_item() {
        let q = Queue::new(QueueBound {
            frames: 100,
            bytes: 1000,
        });
        // Alone in the queue, an item heavier than the bound is taken.
        assert_eq!(q.push(0, 1, 5000, false), Ok(()));
        assert_eq!(q.push(1, 1, 1, false), Err(PushError::Full));
        assert_eq!(q.try_pop(), Ok(0));
        assert_eq!(q.push(2, 1, 600, false), Ok(()));
        assert_eq!(q.push(3, 1, 400, false), Ok(()));
        assert_eq!(q.fill(), (2, 1000));
        assert_eq!(q.push(4, 1, 1, false), Err(PushError::Full));
        assert_eq!(q.try_pop(), Ok(2));
        assert_eq!(q.push(5, 1, 600, false), Ok(()));
        assert_eq!(q.fill(), (2, 1000));
        assert_eq!(q.stats().drops, 2);
    }

    #[test]
    fn wait_fill_returns_at_the_weight_at_the_deadline_or_at_the_end() {
        let q = Arc::new(Queue::new(QueueBound {
            frames: 100,
            bytes: 10_000,
        }));
        let p = q.clone();
        let t = Instant::now();
        let producer = std::thread::spawn(move || {
            for i in 0..10 {
                std::thread::sleep(Duration::from_millis(5));
                assert_eq!(p.push(i, 1, 100, false), Ok(()));
            }
        });
        // 1000 bytes are there after about 50 ms, long before the deadline.
        q.wait_fill(1000, Instant::now() + Duration::from_secs(10));
        assert!(t.elapsed() < Duration::from_secs(5));
        assert_eq!(q.fill(), (10, 1000));
        producer.join().unwrap();
        let t = Instant::now();
        q.wait_fill(5000, Instant::now() + Duration::from_millis(40));
        assert!(t.elapsed() >= Duration::from_millis(40));
        q.close_senders();
        let t = Instant::now();
        q.wait_fill(5000, Instant::now() + Duration::from_secs(10));
        assert!(t.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn blocking_push_waits_for_room_and_receiver_wakes() {
        let q = Arc::new(Queue::new(1));
        let p = q.clone();
        let producer = std::thread::spawn(move || {
            for i in 0..100 {
                assert_eq!(p.push(i, 1, 1, true), Ok(()));
            }
            p.close_senders();
        });
        let mut got = Vec::new();
        while let Ok(i) = q.pop_until(None) {
            got.push(i);
        }
        producer.join().unwrap();
        assert_eq!(got, (0..100).collect::<Vec<_>>());
        assert_eq!(q.stats().drops, 0);
    }

    #[test]
    fn timeout_and_gone_receiver() {
        let q: Queue<u8> = Queue::new(1);
        let t = Instant::now();
        assert_eq!(
            q.pop_until(Some(Instant::now() + Duration::from_millis(30))),
            Err(RecvTimeoutError::Timeout)
        );
        assert!(t.elapsed() >= Duration::from_millis(30));
        assert_eq!(q.push(1, 1, 1, true), Ok(()));
        q.close_receiver();
        // Full, but nobody reads: a blocking push returns instead of waiting.
        assert_eq!(q.push(2, 1, 1, true), Err(PushError::Closed));
        assert_eq!(q.stats().drops, 1);
    }
}
