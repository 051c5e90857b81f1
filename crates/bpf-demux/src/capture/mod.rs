//! Capture: frames from the kernel (or from files) through the merged
//! structure to per-tenant endpoints.
//!
//! Pipeline position: after `exec`; uses the runtime API only
//! (`Automaton`, `MatchSet`), never the IR. [`sys`] is the only module of
//! the crate with `unsafe` code (AF_PACKET sockets, the TPACKET_V3 ring,
//! `SO_ATTACH_FILTER`, network namespaces, signals).
//!
//! - [`endpoint`]: bounded per-tenant channels; one shared copy per frame.
//! - [`dispatch`]: match once, deliver to every accepting tenant,
//!   truncated to `min(return value, captured length, tenant cap)`.
//! - [`live`]: ring workers (PACKET_FANOUT for several), kernel stats.

pub mod dispatch;
pub mod endpoint;
pub mod live;
pub mod own_traffic;
pub mod queue;
pub mod sys;
pub mod update;

pub use dispatch::{Dispatcher, Routing, Stamp};
pub use endpoint::{
    Captured, Delivery, Endpoint, Ready, Senders, TenantId, TenantSpec, TenantStats, FRAME_OVERHEAD,
};
pub use live::{CaptureTotals, Direction, LiveCapture, LiveConfig};
pub use queue::{PushError, QueueBound, RecvTimeoutError, TryRecvError};
pub use update::{Applied, Change, PrefilterState, UpdateError};
