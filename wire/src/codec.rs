//! The frame codec: a 4-byte big-endian length, then a msgpack body with field
//! names. A length above the configured maximum is refused *before* any of the
//! body is buffered, so a peer cannot make us allocate 4 GiB with one header.

use bytes::{Buf, BufMut, BytesMut};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio_util::codec::{Decoder, Encoder};

/// 16 MiB, the default largest frame (ARCHITECTURE.md, Wire).
pub const DEFAULT_MAX_FRAME: usize = 16 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {len} bytes exceeds the maximum of {max} bytes")]
    TooLarge { len: usize, max: usize },
    #[error("frame is not a valid pilotq message: {0}")]
    Decode(String),
    #[error("cannot encode message: {0}")]
    Encode(String),
    /// The cause is in the message, not chained as a source: printed with
    /// its chain (`{:#}`), it would say everything twice.
    #[error("connection error: {0}")]
    Io(std::io::Error),
}

impl FrameError {
    /// A "frame" whose length is a TLS record's first bytes (a handshake
    /// 0x16 or an alert 0x15, then version 3.x): the other end speaks TLS
    /// and this one does not, or the reverse.
    pub fn is_tls_record(&self) -> bool {
        match self {
            FrameError::TooLarge { len, .. } => matches!(
                (*len as u32).to_be_bytes(),
                [0x15 | 0x16, 0x03, 0x00..=0x04, _]
            ),
            _ => false,
        }
    }
}

impl From<std::io::Error> for FrameError {
    fn from(e: std::io::Error) -> Self {
        FrameError::Io(e)
    }
}

/// Largest frame a peer may send before its handshake completes: a `Hello`
/// (a name of at most 256 bytes) or a `Proof` fits many times over, and 60,000
/// unauthenticated connections cannot make the master reserve 16 MiB each.
pub const PRE_HANDSHAKE_MAX_FRAME: usize = 4 * 1024;

/// The largest frame a decoder accepts, shared with its owner so that it can
/// be raised once the peer has authenticated (see [`PRE_HANDSHAKE_MAX_FRAME`]).
#[derive(Debug, Clone)]
pub struct FrameLimit(Arc<AtomicUsize>);

impl FrameLimit {
    pub fn new(max: usize) -> FrameLimit {
        FrameLimit(Arc::new(AtomicUsize::new(max)))
    }

    pub fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }

    pub fn set(&self, max: usize) {
        self.0.store(max, Ordering::Relaxed)
    }
}

/// Decodes `In` frames and encodes `Out` frames.
#[derive(Debug)]
pub struct FrameCodec<In, Out> {
    /// For frames decoded.
    limit: FrameLimit,
    /// For frames encoded.
    max: usize,
    _p: PhantomData<fn(Out) -> In>,
}

impl<In, Out> Clone for FrameCodec<In, Out> {
    fn clone(&self) -> Self {
        FrameCodec {
            limit: self.limit.clone(),
            max: self.max,
            _p: PhantomData,
        }
    }
}

impl<In, Out> FrameCodec<In, Out> {
    pub fn new(max: usize) -> Self {
        Self::with_limit(max, FrameLimit::new(max))
    }

    /// Encodes frames up to `max`; decodes frames up to what `limit` says
    /// at the time.
    pub fn with_limit(max: usize, limit: FrameLimit) -> Self {
        FrameCodec {
            limit,
            max,
            _p: PhantomData,
        }
    }
}

impl<In, Out> Default for FrameCodec<In, Out> {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_FRAME)
    }
}

/// Encodes one message as a frame body (named msgpack).
pub fn encode_body<T: Serialize>(msg: &T) -> Result<Vec<u8>, FrameError> {
    rmp_serde::to_vec_named(msg).map_err(|e| FrameError::Encode(e.to_string()))
}

impl<In: DeserializeOwned, Out> Decoder for FrameCodec<In, Out> {
    type Item = In;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<In>, FrameError> {
        if src.len() < 4 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([src[0], src[1], src[2], src[3]]) as usize;
        let max = self.limit.get();
        if len > max {
            return Err(FrameError::TooLarge { len, max });
        }
        if src.len() < 4 + len {
            src.reserve(4 + len - src.len());
            return Ok(None);
        }
        src.advance(4);
        let body = src.split_to(len);
        rmp_serde::from_slice(&body)
            .map(Some)
            .map_err(|e| FrameError::Decode(e.to_string()))
    }
}

impl<In, Out: Serialize> Encoder<Out> for FrameCodec<In, Out> {
    type Error = FrameError;

    fn encode(&mut self, msg: Out, dst: &mut BytesMut) -> Result<(), FrameError> {
        // Serialised straight into the write buffer behind a length to be
        // filled in: no body allocated and copied per frame (a master with
        // ten thousand holders writes tens of thousands of frames a second).
        let start = dst.len();
        dst.put_u32(0);
        let written = rmp_serde::encode::write_named(&mut (&mut *dst).writer(), &msg);
        let len = dst.len() - start - 4;
        if let Err(e) = written {
            dst.truncate(start);
            return Err(FrameError::Encode(e.to_string()));
        }
        if len > self.max {
            dst.truncate(start);
            return Err(FrameError::TooLarge { len, max: self.max });
        }
        dst[start..start + 4].copy_from_slice(&(len as u32).to_be_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tls_record_read_as_a_length_is_recognised() {
        let too_large = |bytes: [u8; 4]| FrameError::TooLarge {
            len: u32::from_be_bytes(bytes) as usize,
            max: 4096,
        };
        assert!(
            too_large([0x16, 0x03, 0x01, 0x02]).is_tls_record(),
            "a ClientHello"
        );
        assert!(
            too_large([0x15, 0x03, 0x03, 0x00]).is_tls_record(),
            "an alert"
        );
        assert!(!too_large([0x00, 0x10, 0x00, 0x00]).is_tls_record());
        assert!(!too_large([0x16, 0x04, 0x01, 0x02]).is_tls_record());
        assert!(!FrameError::Decode("x".into()).is_tls_record());
    }
    use crate::message::{FromMaster, ToMaster};

    type Peer = FrameCodec<FromMaster, ToMaster>;
    type Master = FrameCodec<ToMaster, FromMaster>;

    #[test]
    fn frames_round_trip_even_when_split() {
        let mut buf = BytesMut::new();
        Peer::default()
            .encode(ToMaster::Heartbeat, &mut buf)
            .unwrap();
        Peer::default().encode(ToMaster::Status, &mut buf).unwrap();
        let all = buf.split();
        let mut m = Master::default();
        let mut got = vec![];
        let mut rx = BytesMut::new();
        for b in all.iter() {
            rx.put_u8(*b);
            while let Some(msg) = m.decode(&mut rx).unwrap() {
                got.push(msg);
            }
        }
        assert_eq!(got, vec![ToMaster::Heartbeat, ToMaster::Status]);
    }

    #[test]
    fn oversized_length_is_refused_before_buffering() {
        let mut m = Master::new(1024);
        let mut rx = BytesMut::from(&[0xff, 0xff, 0xff, 0xff][..]);
        assert!(
            matches!(m.decode(&mut rx), Err(FrameError::TooLarge { len, max: 1024 }) if len == u32::MAX as usize)
        );
    }

    #[test]
    fn an_oversized_frame_is_refused_and_leaves_the_buffer_as_it_was() {
        let mut buf = BytesMut::new();
        Peer::new(64).encode(ToMaster::Heartbeat, &mut buf).unwrap();
        let before = buf.clone();
        let big = ToMaster::Query {
            selectors: vec![crate::message::Selector::All; 100],
        };
        assert!(matches!(
            Peer::new(64).encode(big, &mut buf),
            Err(FrameError::TooLarge { max: 64, .. })
        ));
        assert_eq!(buf, before);
        let mut m = Master::default();
        assert_eq!(m.decode(&mut buf).unwrap(), Some(ToMaster::Heartbeat));
        assert_eq!(m.decode(&mut buf).unwrap(), None);
    }

    #[test]
    fn garbage_body_is_a_decode_error() {
        let mut m = Master::default();
        let mut rx = BytesMut::new();
        rx.put_u32(3);
        rx.extend_from_slice(b"\xc1\xc1\xc1");
        assert!(matches!(m.decode(&mut rx), Err(FrameError::Decode(_))));
    }
}
