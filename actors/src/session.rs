//! One actor per accepted connection, on the master's side. It runs the
//! handshake itself (so unauthenticated bytes never reach the master), then
//! forwards each request to the [`Master`] and waits for it to be taken
//! before reading the next: one request in flight per connection is the
//! back-pressure that keeps a flood from one peer out of everyone's way.
//!
//! Anything wrong — bytes that do not decode, an oversized frame, a wrong
//! password, a newer protocol, silence during the handshake — gets one
//! `Error` frame and a closed connection, and nothing of it is applied.

use crate::master::{FromSession, Master, SessionClosed};
use crate::outbox::Outbox;
use crate::transport::{Conn, Peer};
use actix::prelude::*;
use pilotq_wire::handshake::{fresh_nonce, Prover, Welcome};
use pilotq_wire::{
    FrameCodec, FrameError, FrameLimit, FromMaster, Hello, Role, Secret, ToMaster,
    PRE_HANDSHAKE_MAX_FRAME, PROTOCOL_VERSION,
};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;

enum Phase {
    AwaitHello,
    AwaitProof {
        hello: Hello,
        nonce: Vec<u8>,
    },
    Ready {
        role: Role,
        name: String,
        grant: Grant,
    },
}

/// What an authenticated connection may do, decided by the handshake and
/// the transport; the master acts on this, never on a claim in a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    /// A worker or foreman that proved the holder secret (or one the master
    /// does not ask for).
    Holder,
    /// A client that proved the client secret over TCP: the `Owner` it
    /// claims is trusted, as HTCondor trusts an authenticated CE.
    Client,
    /// A client on the Unix socket: the kernel says it is this user, so its
    /// `Owner` is this name whatever the request claims.
    LocalUser(String),
    /// A client without the secret, let in by `--open-reads`: queries,
    /// history and status only.
    Reader,
}

impl Grant {
    /// May change the queue or read job outputs and the journal.
    pub fn may_write(&self) -> bool {
        !matches!(self, Grant::Reader)
    }

    /// The owner the kernel vouches for, if any.
    pub fn proven_owner(&self) -> Option<&str> {
        match self {
            Grant::LocalUser(u) => Some(u),
            _ => None,
        }
    }
}

pub struct Session {
    master: Addr<Master>,
    outbox: Outbox<FromMaster>,
    phase: Phase,
    secrets: RoleSecrets,
    /// The reader's frame limit: small until the handshake completes.
    limit: FrameLimit,
    max_frame: usize,
    master_name: String,
    lease: Duration,
    peer: Peer,
    opened: Instant,
    handshake_timeout: Duration,
    open_sessions: Arc<AtomicUsize>,
    open_reads: bool,
    /// This connection's place in its source address's count; freed when
    /// the session ends.
    _slot: Option<crate::master::listener::AddrSlot>,
}

/// The shared secrets a peer must prove it knows, by its role: holders
/// (workers, foremen) and clients hold different ones, so a pilot's secret
/// cannot submit and a client's cannot register as a worker. One file may
/// serve both (`--password-file`).
#[derive(Clone, Default)]
pub struct RoleSecrets {
    pub holder: Option<Secret>,
    pub client: Option<Secret>,
}

impl RoleSecrets {
    /// One secret for every role.
    pub fn shared(secret: Option<Secret>) -> RoleSecrets {
        RoleSecrets {
            holder: secret.clone(),
            client: secret,
        }
    }

    pub fn for_role(&self, role: Role) -> Option<&Secret> {
        match role {
            Role::Worker | Role::Foreman => self.holder.as_ref(),
            Role::Client => self.client.as_ref(),
        }
    }

    /// Every role must prove a secret.
    pub fn all_set(&self) -> bool {
        self.holder.is_some() && self.client.is_some()
    }
}

/// What a session needs from the master's configuration.
#[derive(Clone)]
pub struct SessionSettings {
    pub secrets: RoleSecrets,
    pub master_name: String,
    pub max_frame: usize,
    pub handshake_timeout: Duration,
    pub max_connections: usize,
    pub open_sessions: Arc<AtomicUsize>,
    /// Clients without the secret may query (`--open-reads`).
    pub open_reads: bool,
    /// Told to holders in the `Welcome`, so that they keep their reconnect
    /// backoff inside it.
    pub lease: Duration,
}

impl Session {
    /// Starts a session for an accepted stream (TLS already done).
    pub fn start(
        stream: Conn,
        peer: Peer,
        slot: Option<crate::master::listener::AddrSlot>,
        master: Addr<Master>,
        s: SessionSettings,
    ) {
        let (read, write) = stream.into_split();
        let closed = CancellationToken::new();
        let outbox = Outbox::start(
            write,
            FrameCodec::<ToMaster, FromMaster>::new(s.max_frame),
            closed,
        );
        // Until the peer has authenticated it may send only small frames.
        let limit = FrameLimit::new(PRE_HANDSHAKE_MAX_FRAME.min(s.max_frame));
        let open = s.open_sessions.fetch_add(1, Ordering::Relaxed) + 1;
        if open > s.max_connections {
            outbox.deliver(FromMaster::Error {
                message: format!(
                    "master has too many connections ({}); try again later",
                    s.max_connections
                ),
            });
            outbox.closed.cancel();
            s.open_sessions.fetch_sub(1, Ordering::Relaxed);
            return;
        }
        Session::create(move |ctx| {
            ctx.add_stream(FramedRead::new(
                read,
                FrameCodec::<ToMaster, FromMaster>::with_limit(s.max_frame, limit.clone()),
            ));
            Session {
                master,
                outbox,
                phase: Phase::AwaitHello,
                secrets: s.secrets,
                limit,
                max_frame: s.max_frame,
                master_name: s.master_name,
                lease: s.lease,
                peer,
                opened: Instant::now(),
                handshake_timeout: s.handshake_timeout,
                open_sessions: s.open_sessions,
                open_reads: s.open_reads,
                _slot: slot,
            }
        });
    }

    /// Sends one error frame and closes.
    fn refuse(&mut self, ctx: &mut Context<Self>, message: String) {
        tracing::info!(peer = %self.peer, "closing connection: {message}");
        self.outbox.deliver(FromMaster::Error { message });
        ctx.stop();
    }

    fn on_hello(&mut self, ctx: &mut Context<Self>, hello: Hello) {
        if hello.protocol > PROTOCOL_VERSION {
            return self.refuse(
                ctx,
                format!(
                    "protocol version {} is newer than this master speaks ({PROTOCOL_VERSION}); upgrade the master",
                    hello.protocol
                ),
            );
        }
        if hello.protocol == 0 || hello.name.is_empty() || hello.name.len() > 256 {
            return self.refuse(ctx, "bad Hello: protocol 0 or empty/overlong name".into());
        }
        let nonce = fresh_nonce();
        let proof = self
            .secrets
            .for_role(hello.role)
            .map(|s| s.prove(Prover::Master, &hello, &nonce));
        self.outbox.deliver(FromMaster::Welcome(Welcome {
            protocol: PROTOCOL_VERSION,
            name: self.master_name.clone(),
            nonce: nonce.clone(),
            proof,
            lease_ms: Some(self.lease.as_millis().min(u64::MAX as u128) as u64),
        }));
        self.phase = Phase::AwaitProof { hello, nonce };
    }

    fn on_proof(
        &mut self,
        ctx: &mut Context<Self>,
        hello: Hello,
        nonce: Vec<u8>,
        proof: Option<Vec<u8>>,
    ) {
        let grant = match self.grant(&hello, &nonce, proof.as_deref()) {
            Ok(g) => g,
            Err(why) => return self.refuse(ctx, why),
        };
        tracing::debug!(peer = %self.peer, role = %hello.role, name = %hello.name, ?grant, "peer accepted");
        self.limit.set(self.max_frame);
        self.outbox.deliver(FromMaster::Accepted);
        self.phase = Phase::Ready {
            role: hello.role,
            name: hello.name,
            grant,
        };
    }

    /// What the peer may do, or why it is refused.
    fn grant(&self, hello: &Hello, nonce: &[u8], proof: Option<&[u8]>) -> Result<Grant, String> {
        if let Peer::Local { uid, user } = &self.peer {
            // The socket is for people on this host: pilots connect over
            // TCP, where the holder secret decides.
            if hello.role != Role::Client {
                return Err(format!(
                    "a {} may not connect on the Unix socket; connect over TCP",
                    hello.role
                ));
            }
            return match user {
                Some(u) => Ok(Grant::LocalUser(u.clone())),
                None => Err(format!("uid {uid} has no user name on the master's host")),
            };
        }
        // What the role may do once it has proven its secret (or where the
        // master asks for none).
        let proven = match hello.role {
            Role::Client => Grant::Client,
            Role::Worker | Role::Foreman => Grant::Holder,
        };
        let Some(secret) = self.secrets.for_role(hello.role) else {
            return Ok(proven);
        };
        match proof {
            Some(p) if secret.verify(Prover::Peer, hello, nonce, p) => Ok(proven),
            // A wrong password is a mistake to report, even where reads
            // are open; only a client that offers none reads without one.
            None if hello.role == Role::Client && self.open_reads => Ok(Grant::Reader),
            _ => Err("authentication failed: wrong or missing password".into()),
        }
    }
}

impl Actor for Session {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(16);
        // Close when the writer side dies (socket error, slow peer).
        let closed = self.outbox.closed.clone();
        ctx.spawn(
            async move { closed.cancelled().await }
                .into_actor(self)
                .map(|_, _, ctx| ctx.stop()),
        );
        // Half-open and silent connections are closed after the handshake
        // timeout.
        let timeout = self.handshake_timeout;
        ctx.run_later(timeout, |act, ctx| {
            if !matches!(act.phase, Phase::Ready { .. }) {
                let secs = act.opened.elapsed().as_secs();
                act.refuse(ctx, format!("handshake not completed within {secs} s"));
            }
        });
    }

    fn stopped(&mut self, _ctx: &mut Context<Self>) {
        self.outbox.closed.cancel();
        self.open_sessions.fetch_sub(1, Ordering::Relaxed);
        if let Phase::Ready { role, name, .. } = &self.phase {
            // One notice per connection, which the peer cannot multiply
            // without opening connections (bounded by max_connections), so an
            // unbounded do_send is safe here.
            self.master.do_send(SessionClosed {
                conn: self.outbox.conn,
                role: *role,
                name: name.clone(),
            });
        }
    }
}

impl StreamHandler<Result<ToMaster, FrameError>> for Session {
    fn handle(&mut self, item: Result<ToMaster, FrameError>, ctx: &mut Context<Self>) {
        let msg = match item {
            Ok(m) => m,
            // A TLS peer that leaves without close_notify (every client
            // that exits) is a close, not a fault.
            Err(FrameError::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                tracing::debug!(peer = %self.peer, "peer left: {e}");
                return ctx.stop();
            }
            Err(e) if e.is_tls_record() => {
                return self.refuse(
                    ctx,
                    "a TLS client on a plain port: give the master --tls-cert and --tls-key, or the client no --tls-ca".into(),
                )
            }
            Err(e) => return self.refuse(ctx, e.to_string()),
        };
        match (std::mem::replace(&mut self.phase, Phase::AwaitHello), msg) {
            (Phase::AwaitHello, ToMaster::Hello(hello)) => self.on_hello(ctx, hello),
            (Phase::AwaitProof { hello, nonce }, ToMaster::Proof { proof }) => {
                self.on_proof(ctx, hello, nonce, proof)
            }
            (Phase::Ready { role, name, grant }, msg) => {
                let req = FromSession {
                    conn: self.outbox.conn,
                    role,
                    grant: grant.clone(),
                    name: name.clone(),
                    outbox: self.outbox.clone(),
                    msg,
                };
                self.phase = Phase::Ready { role, name, grant };
                // Wait until the master has taken it before reading on.
                ctx.wait(self.master.send(req).into_actor(self).map(|res, act, ctx| {
                    if res.is_err() {
                        act.refuse(ctx, "master is shutting down".into());
                    }
                }));
            }
            (_, other) => {
                let what = format!("{other:?}");
                let what: String = what.chars().take(40).collect();
                self.refuse(
                    ctx,
                    format!("unexpected message before handshake completed: {what}"),
                )
            }
        }
    }

    fn finished(&mut self, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}
