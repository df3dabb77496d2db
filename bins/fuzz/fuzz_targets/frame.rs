//! Any bytes as a connection's stream, arriving in any chunks: the frame
//! codec never panics and never allocates for a frame over its limit; how the
//! bytes are split does not change what is decoded; whatever decodes encodes
//! and decodes back to the same message and the same bytes. The same bytes
//! also make a handshake: a `Hello`, a secret and a master nonce, for which
//! only the genuine proof verifies, and only for the side that made it.
//!
//! Input: byte 0's low 3 bits say how many chunk sizes follow (0 to 7, 0 =
//! one byte at a time); each size is `byte + 1`, used in turn; the rest is
//! the stream, as it is or, if bit 3 of byte 0 is set, spelled in tokens (see
//! [`spell`]) so that a run of 30 s reaches the messages' decoders, not only
//! msgpack's errors. The handshake reads the whole input through
//! `Unstructured`.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use pilotq_wire::handshake::{Prover, Welcome, NONCE_LEN};
use pilotq_wire::{
    FrameCodec, FrameError, FrameLimit, FromMaster, Hello, Role, Secret, ToMaster,
    DEFAULT_MAX_FRAME, PRE_HANDSHAKE_MAX_FRAME,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt::Debug;
use tokio_util::codec::{Decoder, Encoder};

/// The secret the master's side of the decoded stream uses.
const SECRET: &[u8] = b"fuzz secret";
const MASTER_NONCE: [u8; NONCE_LEN] = [7; NONCE_LEN];

fuzz_target!(|data: &[u8]| {
    let (chunks, stream) = match data.split_first() {
        None => (vec![], data.to_vec()),
        Some((&mode, rest)) => {
            let k = usize::from(mode % 8).min(rest.len());
            let sizes = rest[..k].iter().map(|&b| usize::from(b) + 1).collect();
            let stream = if mode & 8 == 0 {
                rest[k..].to_vec()
            } else {
                spell(&rest[k..])
            };
            (sizes, stream)
        }
    };
    let chunks = if chunks.is_empty() { vec![1] } else { chunks };
    let stream = &stream[..];

    // The master's decoder before the handshake, and after it as the master
    // does it: the limit is raised once the peer's `Proof` has come.
    both_ways::<ToMaster, FromMaster>(stream, &chunks, PRE_HANDSHAKE_MAX_FRAME, None);
    both_ways::<ToMaster, FromMaster>(
        stream,
        &chunks,
        PRE_HANDSHAKE_MAX_FRAME,
        Some(DEFAULT_MAX_FRAME),
    );
    // A master's decoder after the handshake, and a peer's.
    both_ways::<ToMaster, FromMaster>(stream, &chunks, DEFAULT_MAX_FRAME, None);
    both_ways::<FromMaster, ToMaster>(stream, &chunks, DEFAULT_MAX_FRAME, None);

    handshake(&mut Unstructured::new(data));
});

/// What one run of a decoder over a stream gave: each message re-encoded,
/// then how it ended.
#[derive(Debug, PartialEq)]
struct Run {
    frames: Vec<Vec<u8>>,
    end: End,
}

#[derive(Debug, PartialEq)]
enum End {
    /// Bytes left that are not a whole frame yet.
    Waiting(usize),
    /// The connection would be closed with this error.
    Failed(String),
}

/// Decodes the stream whole and in the given chunks: the same messages and
/// the same end either way.
fn both_ways<In, Out>(stream: &[u8], chunks: &[usize], limit: usize, raise: Option<usize>)
where
    In: DeserializeOwned + Serialize + PartialEq + Debug + Message,
{
    let whole = decode_stream::<In, Out>(stream, &[stream.len().max(1)], limit, raise);
    let chunked = decode_stream::<In, Out>(stream, chunks, limit, raise);
    assert_eq!(whole, chunked, "chunks {chunks:?} change what is decoded");
}

fn decode_stream<In, Out>(
    stream: &[u8],
    chunks: &[usize],
    limit: usize,
    raise: Option<usize>,
) -> Run
where
    In: DeserializeOwned + Serialize + PartialEq + Debug + Message,
{
    let frame_limit = FrameLimit::new(limit);
    let mut codec = FrameCodec::<In, Out>::with_limit(DEFAULT_MAX_FRAME, frame_limit.clone());
    let mut buf = BytesMut::new();
    let mut frames = vec![];
    let mut handshake = Handshake::default();
    let mut rest = stream;
    let mut sizes = chunks.iter().cycle();
    while !rest.is_empty() {
        let n = (*sizes.next().expect("chunk sizes")).min(rest.len());
        buf.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
        loop {
            let (len_before, capacity) = (buf.len(), buf.capacity());
            let max = frame_limit.get();
            match codec.decode(&mut buf) {
                Ok(Some(msg)) => {
                    frames.push(round_trip(&msg));
                    if msg.is_proof() {
                        if let Some(more) = raise {
                            frame_limit.set(more);
                        }
                    }
                    msg.check_handshake(&mut handshake);
                }
                Ok(None) => {
                    assert_eq!(buf.len(), len_before, "waiting consumes nothing");
                    // Room is reserved for a frame within the limit only.
                    assert!(
                        buf.capacity() <= 2 * (stream.len() + 4 + max) + 64,
                        "capacity {} for a limit of {max}",
                        buf.capacity()
                    );
                    break;
                }
                Err(FrameError::TooLarge { len, max: m }) => {
                    assert_eq!(m, max);
                    assert!(len > max);
                    assert_eq!(
                        len,
                        u32::from_be_bytes(buf[..4].try_into().unwrap()) as usize
                    );
                    // Refused from the header alone: nothing consumed, nothing
                    // reserved for it.
                    assert_eq!(buf.len(), len_before);
                    assert_eq!(buf.capacity(), capacity, "a frame over the limit allocated");
                    unread_tail(&buf, stream, rest);
                    return Run {
                        frames,
                        end: End::Failed(format!("too large: {len} > {max}")),
                    };
                }
                Err(FrameError::Decode(e)) => {
                    return Run {
                        frames,
                        end: End::Failed(e),
                    }
                }
                Err(e) => panic!("decoding bytes in memory gave {e:?}"),
            }
        }
    }
    unread_tail(&buf, stream, rest);
    Run {
        frames,
        end: End::Waiting(buf.len()),
    }
}

/// What is left in the buffer is exactly the stream's last bytes pushed.
fn unread_tail(buf: &[u8], stream: &[u8], rest: &[u8]) {
    let pushed = stream.len() - rest.len();
    assert_eq!(buf, &stream[pushed - buf.len()..pushed]);
}

/// A decoded message encodes (by the other side's codec), decodes back to an
/// equal message, and encodes again to the same bytes. Returns the bytes.
fn round_trip<In>(msg: &In) -> Vec<u8>
where
    In: DeserializeOwned + Serialize + PartialEq + Debug,
{
    // The encoder's bound is not under test here: a message may encode a
    // little larger than it came (defaults filled in, names spelled out).
    let max = u32::MAX as usize;
    let mut encoder = FrameCodec::<(), &In>::new(max);
    let mut first = BytesMut::new();
    encoder
        .encode(msg, &mut first)
        .expect("a decoded message encodes");
    let frame = first.to_vec();
    let mut decoder = FrameCodec::<In, ()>::new(max);
    let again = decoder
        .decode(&mut first)
        .expect("a re-encoded message decodes")
        .expect("a whole frame");
    assert!(first.is_empty(), "the frame is read to its end");
    assert_eq!(&again, msg, "round trip changes the message");
    let mut second = BytesMut::new();
    encoder.encode(&again, &mut second).unwrap();
    assert_eq!(second.to_vec(), frame, "round trip changes the bytes");
    frame
}

/// The master's side of a handshake seen in a decoded stream.
#[derive(Default)]
struct Handshake {
    hello: Option<Hello>,
}

trait Message {
    fn is_proof(&self) -> bool {
        false
    }
    fn check_handshake(&self, _: &mut Handshake) {}
}

impl Message for FromMaster {}

impl Message for ToMaster {
    fn is_proof(&self) -> bool {
        matches!(self, ToMaster::Proof { .. })
    }

    /// A `Proof` after a `Hello`, checked as the master checks it: it
    /// verifies exactly when it is the genuine proof.
    fn check_handshake(&self, hs: &mut Handshake) {
        match self {
            ToMaster::Hello(h) => hs.hello = Some(h.clone()),
            ToMaster::Proof { proof } => {
                if let (Some(hello), Some(proof)) = (&hs.hello, proof) {
                    let secret = Secret::new(SECRET);
                    let genuine = secret.prove(Prover::Peer, hello, &MASTER_NONCE);
                    assert_eq!(
                        secret.verify(Prover::Peer, hello, &MASTER_NONCE, proof),
                        *proof == genuine
                    );
                }
            }
            _ => {}
        }
    }
}

fn handshake(u: &mut Unstructured) {
    let Ok(hs) = Input::arbitrary(u) else { return };
    let Input {
        key,
        other_key,
        hello,
        master_nonce,
        proof,
        who,
    } = hs;
    let secret = Secret::new(key.clone());
    let (who, other) = if who {
        (Prover::Master, Prover::Peer)
    } else {
        (Prover::Peer, Prover::Master)
    };

    let genuine = secret.prove(who, &hello, &master_nonce);
    assert_eq!(genuine.len(), 32, "HMAC-SHA256");
    assert_eq!(genuine, secret.prove(who, &hello, &master_nonce));
    assert!(secret.verify(who, &hello, &master_nonce, &genuine));
    // Reflected to the other side, it fails.
    assert!(!secret.verify(other, &hello, &master_nonce, &genuine));
    // Arbitrary bytes verify only if they are the genuine proof.
    assert_eq!(
        secret.verify(who, &hello, &master_nonce, &proof),
        proof == genuine
    );
    // Any cut of the genuine proof fails.
    assert!(!secret.verify(who, &hello, &master_nonce, &genuine[..proof.len() % 32]));

    // Another secret fails, unless HMAC cannot tell the keys apart: keys of
    // at most a block (64 bytes) are padded with zeros, longer ones hashed.
    let trimmed = |k: &[u8]| {
        let end = k.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        k[..end].to_vec()
    };
    if key.len() <= 64 && other_key.len() <= 64 && trimmed(&key) != trimmed(&other_key) {
        assert!(!Secret::new(other_key).verify(who, &hello, &master_nonce, &genuine));
    }

    // Any change to what was proved fails, including moving a byte from one
    // field to its neighbour (every field is length-prefixed).
    let fails = |h: &Hello, mn: &[u8]| assert!(!secret.verify(who, h, mn, &genuine));
    let mut h = hello.clone();
    h.name.push('x');
    fails(&h, &master_nonce);
    let mut h = hello.clone();
    h.role = match h.role {
        Role::Worker => Role::Foreman,
        Role::Foreman => Role::Client,
        Role::Client => Role::Worker,
    };
    fails(&h, &master_nonce);
    let mut mn = master_nonce.clone();
    mn.push(0);
    fails(&hello, &mn);
    if let Some(last) = hello.nonce.last() {
        let mut h = hello.clone();
        h.nonce.pop();
        let mut mn = vec![*last];
        mn.extend_from_slice(&master_nonce);
        fails(&h, &mn);
    }

    // A real handshake's frames fit the pre-handshake limit: a `Hello` with
    // a name of at most 256 bytes and a fresh nonce, a `Proof`, a `Welcome`.
    if hello.name.len() <= 256 && hello.nonce.len() <= NONCE_LEN {
        let mut peer = FrameCodec::<FromMaster, ToMaster>::new(PRE_HANDSHAKE_MAX_FRAME);
        let mut master = FrameCodec::<ToMaster, FromMaster>::new(PRE_HANDSHAKE_MAX_FRAME);
        let mut wire = BytesMut::new();
        peer.encode(ToMaster::Hello(hello.clone()), &mut wire)
            .expect("a Hello fits the pre-handshake limit");
        peer.encode(
            ToMaster::Proof {
                proof: Some(genuine.clone()),
            },
            &mut wire,
        )
        .expect("a Proof fits the pre-handshake limit");
        assert_eq!(
            master.decode(&mut wire).unwrap(),
            Some(ToMaster::Hello(hello.clone()))
        );
        let Some(ToMaster::Proof { proof: Some(p) }) = master.decode(&mut wire).unwrap() else {
            panic!("the Proof comes back")
        };
        assert!(secret.verify(who, &hello, &master_nonce, &p));
        if master_nonce.len() <= NONCE_LEN {
            let welcome = FromMaster::Welcome(Welcome {
                protocol: hello.protocol,
                name: hello.name.clone(),
                nonce: master_nonce.clone(),
                proof: Some(genuine),
                lease_ms: Some(u64::MAX),
            });
            master
                .encode(welcome.clone(), &mut wire)
                .expect("a Welcome fits the pre-handshake limit");
            assert_eq!(peer.decode(&mut wire).unwrap(), Some(welcome));
        }
    }
}

/// A handshake's ingredients.
#[derive(Debug)]
struct Input {
    key: Vec<u8>,
    other_key: Vec<u8>,
    hello: Hello,
    master_nonce: Vec<u8>,
    proof: Vec<u8>,
    who: bool,
}

impl<'a> Arbitrary<'a> for Input {
    fn arbitrary(u: &mut Unstructured<'a>) -> libfuzzer_sys::arbitrary::Result<Self> {
        Ok(Input {
            key: Vec::arbitrary(u)?,
            other_key: Vec::arbitrary(u)?,
            hello: Hello {
                protocol: u32::arbitrary(u)?,
                role: *u.choose(&[Role::Worker, Role::Foreman, Role::Client])?,
                name: String::arbitrary(u)?,
                nonce: Vec::arbitrary(u)?,
            },
            master_nonce: Vec::arbitrary(u)?,
            proof: Vec::arbitrary(u)?,
            who: bool::arbitrary(u)?,
        })
    }
}

/// Every name the messages spell: variants and fields.
#[rustfmt::skip]
const NAMES: &[&str] = &[
    // ToMaster, FromMaster
    "Hello", "Proof", "Register", "Heartbeat", "Capacity", "Drain", "Started",
    "Finished", "Adopted", "FetchBlob", "Submit", "Query", "Remove", "Status",
    "Release", "KeptOutput", "History", "JournalTail", "Welcome", "Accepted",
    "Error", "Dispatch", "Kill", "Ack", "Drained", "Submitted", "Jobs",
    "Removed", "Blob", "Released", "Output", "JournalSegments",
    // other enums
    "All", "Cluster", "Job", "Worker", "Foreman", "Client", "Exited",
    "Signalled", "FailedToStart", "Queued", "Running", "ResultFollows",
    // fields
    "protocol", "role", "name", "nonce", "proof", "lease_ms", "resources",
    "holdings", "depth", "max_jobs", "tags", "token", "hash", "spec", "count",
    "executable", "selectors", "owner", "job", "stderr", "stdout", "forwards",
    "from", "message", "cluster", "jobs", "last", "bytes", "problems",
    "segments", "first", "attempt", "at", "wrapper", "wrapper_bytes", "proc",
    "cores", "memory_mb", "disk_mb", "state", "outcome", "started_at",
    "ended_at", "code", "signal", "reason", "cmd", "arguments", "environment",
    "output", "error", "log", "request", "priority", "attributes", "iwd",
    "leave_in_queue", "id", "status", "attempts", "exit_code", "holder",
    "hold_reason", "submitted_at", "entered_status_at", "completed_at",
    "num_starts", "last_holder", "seq", "idle", "running", "held", "completed",
    "removed", "holders", "journal_seq", "history_completed", "history_removed",
];

/// Frames spelled in tokens: byte `t < NAMES.len()` is that name as a
/// msgpack string; 0xfe ends a frame; 0xff takes the next byte as it is; any
/// other byte is itself. Each frame gets its length header.
fn spell(tokens: &[u8]) -> Vec<u8> {
    let mut stream = vec![];
    let mut body = vec![];
    let mut frame = |body: &mut Vec<u8>| {
        stream.extend_from_slice(&(body.len() as u32).to_be_bytes());
        stream.append(body);
    };
    let mut bytes = tokens.iter().copied();
    while let Some(t) = bytes.next() {
        match t {
            0xfe => frame(&mut body),
            0xff => body.extend(bytes.next()),
            t if usize::from(t) < NAMES.len() => {
                let name = NAMES[usize::from(t)].as_bytes();
                body.push(0xa0 | name.len() as u8); // fixstr: every name is < 32 bytes
                body.extend_from_slice(name);
            }
            t => body.push(t),
        }
    }
    if !body.is_empty() {
        frame(&mut body);
    }
    stream
}
