//! Reading whole protocol messages from a byte stream, keeping what came
//! of a message that is not whole yet (a read timeout loses nothing).

use super::proto::{self, ClientMessage, DaemonMessage, ProtoError};
use std::io::{self, Read};

/// Why no message came.
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    /// The read failed (a read timeout, `WouldBlock` or `TimedOut`, or a
    /// signal, `Interrupted`: call again, nothing is lost).
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The bytes do not decode: the connection cannot go on.
    #[error("{0}")]
    Proto(#[from] ProtoError),
    /// The peer closed: between messages, or inside one.
    #[error("connection closed{}", if *.mid_message { " inside a message" } else { "" })]
    /// The peer closed.
    Closed {
        /// Inside a message (not between two).
        mid_message: bool,
    },
}

impl ConnError {
    /// A read timeout or a signal (the caller decides whether it waited
    /// too long, or what the signal means, and calls again).
    pub fn is_timeout(&self) -> bool {
        matches!(self, ConnError::Io(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted))
    }
}

/// A decoder of one side's messages ([`proto::decode_client`] or
/// [`proto::decode_daemon`]).
type Decoder<T> = fn(&[u8]) -> Result<Option<(T, usize)>, ProtoError>;

/// Messages from a stream.
pub struct MessageReader<R> {
    inner: R,
    buf: Vec<u8>,
}

impl<R: Read> MessageReader<R> {
    /// A reader of whole messages from `inner`.
    pub fn new(inner: R) -> MessageReader<R> {
        MessageReader {
            inner,
            buf: Vec::new(),
        }
    }

    /// True when part of a message has arrived and the rest has not.
    pub fn has_partial(&self) -> bool {
        !self.buf.is_empty()
    }

    fn next<T>(&mut self, decode: Decoder<T>) -> Result<T, ConnError> {
        let mut chunk = [0u8; 16384];
        loop {
            if let Some((m, used)) = decode(&self.buf)? {
                self.buf.drain(..used);
                return Ok(m);
            }
            let n = self.inner.read(&mut chunk)?;
            if n == 0 {
                return Err(ConnError::Closed {
                    mid_message: self.has_partial(),
                });
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// The next message a client sent.
    pub fn next_client(&mut self) -> Result<ClientMessage, ConnError> {
        self.next(proto::decode_client)
    }

    /// The next message the daemon sent.
    pub fn next_daemon(&mut self) -> Result<DaemonMessage, ConnError> {
        self.next(proto::decode_daemon)
    }
}
