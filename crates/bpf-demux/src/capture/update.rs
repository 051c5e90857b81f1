//! Tenant changes for a running capture: what a change is, how a batch is
//! checked before anything is touched, and how the kernel prefilter is
//! swapped on the ring sockets.
//!
//! A batch is applied in order to the capture's `FilterSet` and to a copy
//! of its channels; the new automaton's prefilter goes onto every ring
//! socket first (a frame the new set accepts is never dropped after the
//! swap), then the workers switch to the new routing between ring blocks.

use super::endpoint::Endpoint;
use super::queue::QueueBound;
use super::sys::FilterHandle;
use crate::exec::Automaton;
use crate::prefilter::NoPrefilter;
use crate::set::NamedProgram;
use crate::set::SetError;
use crate::FilterSet;
use std::collections::HashSet;

/// One tenant change.
#[derive(Clone, Debug)]
pub enum Change {
    /// A new tenant (name, program, snaplen) with a queue of `queue`
    /// (frames, or frames and bytes).
    Add {
        /// The tenant's filter, name and snaplen.
        filter: NamedProgram,
        /// What the tenant's queue holds at most.
        queue: QueueBound,
    },
    /// The tenant of this name stops; its stream ends once the workers have
    /// let go of it.
    Remove(String),
    /// The tenant of the filter's name gets the new program and snaplen and
    /// keeps its endpoint and queue.
    Replace(NamedProgram),
}

impl Change {
    fn name(&self) -> &str {
        match self {
            Change::Add { filter, .. } | Change::Replace(filter) => &filter.name,
            Change::Remove(n) => n,
        }
    }
}

/// Why a batch was refused (nothing of it was applied).
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    #[error("change {index}: tenant `{name}` already exists")]
    /// Adding a tenant whose name is taken.
    Exists {
        /// Position of the change in the batch.
        index: usize,
        /// The tenant.
        name: String,
    },
    #[error("change {index}: no tenant `{name}`")]
    /// Removing or replacing a tenant that does not exist.
    Unknown {
        /// Position of the change in the batch.
        index: usize,
        /// The tenant.
        name: String,
    },
    #[error("change {index}: {err}")]
    /// A filter the set refuses.
    Filter {
        /// Position of the change in the batch.
        index: usize,
        /// What the set refused.
        err: SetError,
    },
    #[error("change {index}: a queue of 0 frames or 0 bytes")]
    /// A queue that could hold nothing.
    EmptyQueue {
        /// Position of the change in the batch.
        index: usize,
    },
    #[error("the capture has stopped")]
    /// The capture is no longer running.
    Stopped,
}

/// What an applied batch did.
#[derive(Debug)]
pub struct Applied {
    /// The endpoints of the added tenants, in the batch's order.
    pub endpoints: Vec<Endpoint>,
    /// Tenants added.
    pub added: usize,
    /// Tenants removed.
    pub removed: usize,
    /// Tenants whose filter was replaced.
    pub replaced: usize,
    /// The ring sockets' prefilter after the batch.
    pub prefilter: PrefilterState,
    /// The kernel refused to swap the prefilter in place (ENOMEM: both
    /// programs charged to `optmem_max`), so it was detached and the new
    /// one attached alone: for that instant every frame passed.
    pub prefilter_retried: bool,
}

/// The kernel prefilter on the ring sockets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PrefilterState {
    /// Switched off by the configuration.
    Off,
    /// This many instructions on every ring socket.
    Attached(usize),
    /// None: the set has none (the reason: a tenant accepts everything,
    /// or a filter runs in the fallback interpreter), so every frame
    /// reaches the ring.
    NoneForSet(NoPrefilter),
    /// None, because the kernel refused to attach the set's (the error):
    /// every frame reaches the ring, and the capture goes on.
    Refused(String),
}

impl PrefilterState {
    /// Instructions attached, if any.
    pub fn insns(&self) -> Option<usize> {
        match self {
            PrefilterState::Attached(n) => Some(*n),
            _ => None,
        }
    }
}

/// Checks `changes` against the tenants of `set`, in order, without
/// changing anything.
pub(crate) fn check(set: &FilterSet, changes: &[Change]) -> Result<(), UpdateError> {
    let mut names: HashSet<&str> = set.ids().filter_map(|id| set.name(id)).collect();
    for (index, c) in changes.iter().enumerate() {
        let name = c.name();
        let named = |name: &str| name.to_owned();
        match c {
            Change::Remove(_) => {
                if !names.remove(name) {
                    return Err(UpdateError::Unknown {
                        index,
                        name: named(name),
                    });
                }
            }
            Change::Add { filter, queue } => {
                FilterSet::check(filter).map_err(|err| UpdateError::Filter { index, err })?;
                if queue.frames == 0 || queue.bytes == 0 {
                    return Err(UpdateError::EmptyQueue { index });
                }
                if !names.insert(name) {
                    return Err(UpdateError::Exists {
                        index,
                        name: named(name),
                    });
                }
            }
            Change::Replace(filter) => {
                FilterSet::check(filter).map_err(|err| UpdateError::Filter { index, err })?;
                if !names.contains(name) {
                    return Err(UpdateError::Unknown {
                        index,
                        name: named(name),
                    });
                }
            }
        }
    }
    Ok(())
}

/// Puts `automaton`'s prefilter on every ring socket. An ENOMEM (the
/// kernel charges the old and the new program to `optmem_max` while it
/// swaps) is retried through no filter: detach, then attach the new one
/// alone; if the kernel still refuses, the sockets stay without a filter
/// (every frame passes, nothing the set accepts is lost) and the state
/// says why.
/// Returns the state and whether the ENOMEM retry was needed.
pub(crate) fn swap_prefilter(
    rings: &[FilterHandle],
    automaton: &Automaton,
) -> (PrefilterState, bool) {
    let p = match crate::prefilter::compile(automaton) {
        Ok(p) => p,
        Err(why) => {
            for h in rings {
                // Without a filter every frame passes: the safe side.
                let _ = h.detach();
            }
            return (PrefilterState::NoneForSet(why), false);
        }
    };
    let mut refused = None;
    let mut retried = false;
    for h in rings {
        let r = match h.attach(p.insns()) {
            Err(e) if e.raw_os_error() == Some(libc::ENOMEM) => {
                retried = true;
                h.detach().and_then(|()| h.attach(p.insns()))
            }
            r => r,
        };
        if let Err(e) = r {
            let _ = h.detach();
            refused = Some(format!("attaching {} instructions: {e}", p.len()));
        }
    }
    let state = match refused {
        Some(why) => {
            for h in rings {
                let _ = h.detach();
            }
            PrefilterState::Refused(why)
        }
        None => PrefilterState::Attached(p.len()),
    };
    (state, retried)
}
