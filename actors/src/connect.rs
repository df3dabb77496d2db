//! The peer side of the handshake (workers, foremen, clients): connect, say
//! `Hello`, check the master's proof, prove ourselves, wait for `Accepted`.

use crate::tls::ClientTls;
use crate::transport::{Conn, DialError};
use futures::{SinkExt, StreamExt};
use pilotq_wire::handshake::{fresh_nonce, Prover};
use pilotq_wire::{
    FrameCodec, FrameError, FromMaster, Hello, Role, Secret, ToMaster, PROTOCOL_VERSION,
};
use std::time::Duration;
use tokio_util::codec::Framed;

pub type PeerFramed = Framed<Conn, FrameCodec<FromMaster, ToMaster>>;

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    // Causes are in the messages, not chained as sources: printed with
    // their chain (`{:#}`), they would be said twice.
    #[error("cannot connect to master at {addr}: {cause}")]
    Connect { addr: String, cause: std::io::Error },
    #[error("TLS with the master at {addr} failed: {reason}")]
    Tls { addr: String, reason: String },
    #[error("master at {addr} did not answer within {secs} s")]
    Timeout { addr: String, secs: u64 },
    #[error("master at {addr} refused us: {message}")]
    Refused { addr: String, message: String },
    #[error("authentication failed: master at {addr} could not prove it knows our password (are both given the same password file?)")]
    MasterUnproven { addr: String },
    #[error("authentication failed: master at {addr} has no password set, but we were given one")]
    MasterOpen { addr: String },
    #[error("master at {addr} closed the connection")]
    Closed { addr: String },
    #[error("master at {addr} sent something unexpected: {what}")]
    Protocol { addr: String, what: String },
    #[error("master at {addr}: {cause}")]
    Frame { addr: String, cause: FrameError },
}

/// Connects and authenticates. `addr` is `HOST:PORT`, or `unix:PATH` for
/// the master's Unix socket; over TCP, `tls` wraps the link in TLS and the
/// handshake runs inside it. `timeout` bounds the whole exchange.
pub async fn connect(
    addr: &str,
    role: Role,
    name: &str,
    secret: Option<&Secret>,
    tls: Option<&ClientTls>,
    max_frame: usize,
    timeout: Duration,
) -> Result<PeerFramed, ConnectError> {
    Ok(
        connect_holder(addr, role, name, secret, tls, max_frame, timeout)
            .await?
            .0,
    )
}

/// [`connect`], for a holder: also the lease the master grants (from its
/// `Welcome`; `None` from a master that does not say).
pub async fn connect_holder(
    addr: &str,
    role: Role,
    name: &str,
    secret: Option<&Secret>,
    tls: Option<&ClientTls>,
    max_frame: usize,
    timeout: Duration,
) -> Result<(PeerFramed, Option<Duration>), ConnectError> {
    let a = addr.to_string();
    let exchange = handshake(addr, role, name, secret, tls, max_frame);
    match tokio::time::timeout(timeout, exchange).await {
        Ok(r) => r,
        Err(_) => Err(ConnectError::Timeout {
            addr: a,
            secs: timeout.as_secs(),
        }),
    }
}

async fn handshake(
    addr: &str,
    role: Role,
    name: &str,
    secret: Option<&Secret>,
    tls: Option<&ClientTls>,
    max_frame: usize,
) -> Result<(PeerFramed, Option<Duration>), ConnectError> {
    let a = || addr.to_string();
    let stream = Conn::dial(addr, tls).await.map_err(|e| match e {
        DialError::Connect(cause) => ConnectError::Connect { addr: a(), cause },
        DialError::Tls(reason) => ConnectError::Tls { addr: a(), reason },
    })?;
    let mut framed = Framed::new(stream, FrameCodec::new(max_frame));
    let hello = Hello {
        protocol: PROTOCOL_VERSION,
        role,
        name: name.to_string(),
        nonce: fresh_nonce(),
    };
    let send = |e| frame_error(addr, e);
    framed
        .send(ToMaster::Hello(hello.clone()))
        .await
        .map_err(send)?;
    let welcome = match next(&mut framed, addr).await? {
        FromMaster::Welcome(w) => w,
        other => return Err(unexpected(addr, other)),
    };
    let proof = match (secret, &welcome.proof) {
        (Some(s), Some(p)) => {
            if !s.verify(Prover::Master, &hello, &welcome.nonce, p) {
                return Err(ConnectError::MasterUnproven { addr: a() });
            }
            Some(s.prove(Prover::Peer, &hello, &welcome.nonce))
        }
        (Some(_), None) => return Err(ConnectError::MasterOpen { addr: a() }),
        (None, _) => None,
    };
    framed.send(ToMaster::Proof { proof }).await.map_err(send)?;
    let lease = welcome.lease_ms.map(Duration::from_millis);
    match next(&mut framed, addr).await? {
        FromMaster::Accepted => Ok((framed, lease)),
        other => Err(unexpected(addr, other)),
    }
}

/// The next frame, with errors and a close turned into [`ConnectError`].
pub async fn next(framed: &mut PeerFramed, addr: &str) -> Result<FromMaster, ConnectError> {
    match framed.next().await {
        Some(Ok(FromMaster::Error { message })) => Err(ConnectError::Refused {
            addr: addr.to_string(),
            message,
        }),
        Some(Ok(m)) => Ok(m),
        Some(Err(e)) => Err(frame_error(addr, e)),
        None => Err(ConnectError::Closed {
            addr: addr.to_string(),
        }),
    }
}

/// A frame error, or what it means: a plain client reading a TLS master's
/// alert sees a TLS record where a length should be.
pub fn frame_error(addr: &str, cause: FrameError) -> ConnectError {
    if cause.is_tls_record() {
        return ConnectError::Tls {
            addr: addr.to_string(),
            reason: "the master speaks TLS; give its CA with --tls-ca (or PILOTQ_TLS_CA)".into(),
        };
    }
    ConnectError::Frame {
        addr: addr.to_string(),
        cause,
    }
}

fn unexpected(addr: &str, m: FromMaster) -> ConnectError {
    let what = format!("{m:?}");
    ConnectError::Protocol {
        addr: addr.to_string(),
        what: what.chars().take(120).collect(),
    }
}

/// Sends results in `Finished` frames of bounded size: outputs can be large
/// (64 MiB streams), and a frame over the limit would cut the connection.
pub fn deliver_results(
    ob: &crate::outbox::Outbox<ToMaster>,
    results: Vec<pilotq_wire::JobResult>,
    max_frame: usize,
) {
    let mut batch = Vec::new();
    let mut size = 0usize;
    for r in results {
        let len = r.stdout.len() + r.stderr.len() + 512;
        if !batch.is_empty() && size + len > max_frame / 2 {
            ob.deliver(ToMaster::Finished(std::mem::take(&mut batch)));
            size = 0;
        }
        size += len;
        batch.push(r);
    }
    if !batch.is_empty() {
        ob.deliver(ToMaster::Finished(batch));
    }
}

/// Splits an authenticated connection into its sending half (an [`Outbox`],
/// whose writer task runs on the current runtime) and a stream of what
/// arrives, each item wrapped by `wrap`, ending with `wrap(None)` when the
/// connection closes — so an actor can tell this connection's end from an
/// older one's.
pub fn split_link<M: 'static>(
    framed: PeerFramed,
    max_frame: usize,
    wrap: impl Fn(Option<Result<FromMaster, FrameError>>) -> M + Clone + 'static,
) -> (
    crate::outbox::Outbox<ToMaster>,
    impl futures::Stream<Item = M> + 'static,
) {
    let parts = framed.into_parts();
    let (read, write) = parts.io.into_split();
    let outbox = crate::outbox::Outbox::start(
        write,
        FrameCodec::<FromMaster, ToMaster>::new(max_frame),
        tokio_util::sync::CancellationToken::new(),
    );
    let mut reader = tokio_util::codec::FramedRead::new(
        read,
        FrameCodec::<FromMaster, ToMaster>::new(max_frame),
    );
    // Bytes that arrived with the handshake's last frame belong to us.
    reader.read_buffer_mut().extend_from_slice(&parts.read_buf);
    let closed = outbox.closed.clone();
    let end = wrap.clone();
    let stream = reader
        .take_until(async move { closed.cancelled().await })
        .map(move |m| wrap(Some(m)))
        .chain(futures::stream::once(async move { end(None) }));
    (outbox, stream)
}
