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
use actix::prelude::*;
use pilotq_wire::handshake::{fresh_nonce, Prover, Welcome};
use pilotq_wire::{
    FrameCodec, FrameError, FrameLimit, FromMaster, Hello, Role, Secret, ToMaster,
    PRE_HANDSHAKE_MAX_FRAME, PROTOCOL_VERSION,
};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;

enum Phase {
    AwaitHello,
    AwaitProof { hello: Hello, nonce: Vec<u8> },
    Ready { role: Role, name: String },
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
    peer: String,
    opened: Instant,
    handshake_timeout: Duration,
    open_sessions: Arc<AtomicUsize>,
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
    /// Told to holders in the `Welcome`, so that they keep their reconnect
    /// backoff inside it.
    pub lease: Duration,
}

impl Session {
    /// Starts a session for an accepted stream.
    pub fn start(stream: TcpStream, master: Addr<Master>, s: SessionSettings) {
        let peer = stream
            .peer_addr()
            .map(|a| a.to_string())
            .unwrap_or_else(|_| "?".into());
        let _ = stream.set_nodelay(true);
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
        if let Some(secret) = self.secrets.for_role(hello.role) {
            let ok = proof
                .as_deref()
                .is_some_and(|p| secret.verify(Prover::Peer, &hello, &nonce, p));
            if !ok {
                return self.refuse(
                    ctx,
                    "authentication failed: wrong or missing password".into(),
                );
            }
        }
        tracing::debug!(peer = %self.peer, role = %hello.role, name = %hello.name, "peer accepted");
        self.limit.set(self.max_frame);
        self.outbox.deliver(FromMaster::Accepted);
        self.phase = Phase::Ready {
            role: hello.role,
            name: hello.name,
        };
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
        if let Phase::Ready { role, name } = &self.phase {
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
            Err(e) => return self.refuse(ctx, e.to_string()),
        };
        match (std::mem::replace(&mut self.phase, Phase::AwaitHello), msg) {
            (Phase::AwaitHello, ToMaster::Hello(hello)) => self.on_hello(ctx, hello),
            (Phase::AwaitProof { hello, nonce }, ToMaster::Proof { proof }) => {
                self.on_proof(ctx, hello, nonce, proof)
            }
            (Phase::Ready { role, name }, msg) => {
                let req = FromSession {
                    conn: self.outbox.conn,
                    role,
                    name: name.clone(),
                    outbox: self.outbox.clone(),
                    msg,
                };
                self.phase = Phase::Ready { role, name };
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
