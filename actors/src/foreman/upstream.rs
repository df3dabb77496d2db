//! The foreman's link to its master: one holder of role Foreman, offering its
//! workers' summed resources times its depth. It relays jobs down (as
//! adoptions), kills down, start reports and results up, and acknowledgements
//! back to the local journal. It reconnects with backoff, failing over across
//! its upstreams like a worker, and never stops the local queue meanwhile.

use super::{Adopt, BlobFetched, ForUpstream, Forwarded, Forwards, Up, UpstreamKill};
use crate::backoff::Backoff;
use crate::connect::{connect_holder, split_link};
use crate::master::Master;
use crate::outbox::Outbox;
use actix::prelude::*;
use pilotq_wire::{FrameError, FromMaster, Resources, Role, Secret, ToMaster};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    /// The master (or masters, to fail over between).
    pub upstreams: Vec<String>,
    /// The foreman's name: its holder identity at the master.
    pub name: String,
    pub secret: Option<Secret>,
    /// TLS to the master (`--tls-ca`); `None`: plain TCP.
    pub tls: Option<crate::tls::ClientTls>,
    /// Shown at every registration, and kept beside the foreman's journal
    /// (`kept_secret`): a foreman restarted from its journal is
    /// the same holder, and takes back the attempts it holds.
    pub token: Vec<u8>,
    pub max_frame: usize,
    pub heartbeat: Duration,
    /// Jobs held as a multiple of the workers' resources (a foreman pulls
    /// at most free slots × depth).
    pub depth: u32,
    /// Offered upstream: the master sends it only jobs whose tags it has.
    pub tags: Vec<String>,
    /// The lease assumed until the master states its own: the foreman's
    /// (sites run one lease), since a restarted foreman may hold jobs from
    /// its journal before any master has welcomed it.
    pub assumed_lease: Duration,
}

pub struct Upstream {
    cfg: UpstreamConfig,
    master: Addr<Master>,
    outbox: Option<Outbox<ToMaster>>,
    generation: u64,
    connecting: bool,
    upstream: usize,
    backoff: Backoff,
    capacity: Resources,
}

#[derive(Message)]
#[rtype(result = "()")]
struct Incoming(u64, Option<Result<FromMaster, FrameError>>);

impl Upstream {
    pub fn new(cfg: UpstreamConfig, master: Addr<Master>) -> Upstream {
        let mut backoff = Backoff::default();
        backoff.fit_lease(cfg.assumed_lease);
        Upstream {
            cfg,
            master,
            outbox: None,
            generation: 0,
            connecting: false,
            upstream: 0,
            backoff,
            capacity: Resources::default(),
        }
    }

    fn address(&self) -> String {
        self.cfg.upstreams[self.upstream % self.cfg.upstreams.len()].clone()
    }

    fn retry(&mut self, ctx: &mut Context<Self>, why: &str) {
        self.upstream = (self.upstream + 1) % self.cfg.upstreams.len();
        let wait = self.backoff.next_wait_among(self.cfg.upstreams.len());
        tracing::warn!(
            "{why}; the local queue goes on; trying {} in {:.1} s",
            self.address(),
            wait.as_secs_f64()
        );
        ctx.run_later(wait, |act, ctx| act.connect(ctx));
    }

    fn connect(&mut self, ctx: &mut Context<Self>) {
        if self.connecting || self.outbox.is_some() {
            return;
        }
        self.connecting = true;
        let c = self.cfg.clone();
        let addr = self.address();
        let master = self.master.clone();
        let fut = async move {
            let (framed, lease) = connect_holder(
                &addr,
                Role::Foreman,
                &c.name,
                c.secret.as_ref(),
                c.tls.as_ref(),
                c.max_frame,
                Duration::from_secs(20),
            )
            .await
            .map_err(|e| e.to_string())?;
            // What it holds, taken after the handshake: as fresh as it can be.
            let reg = master.send(ForUpstream).await.map_err(|e| e.to_string())?;
            if let Some(why) = &reg.paused {
                return Err(format!("the local queue is paused ({why})"));
            }
            Ok::<_, String>((framed, lease, reg))
        };
        ctx.spawn(fut.into_actor(self).map(|res, act, ctx| {
            act.connecting = false;
            let (framed, lease, reg) = match res {
                Ok(r) => r,
                Err(e) => return act.retry(ctx, &e),
            };
            if let Some(lease) = lease {
                act.backoff.fit_lease(lease);
            }
            act.generation += 1;
            let gen = act.generation;
            let (outbox, stream) = split_link(framed, act.cfg.max_frame, move |m| Incoming(gen, m));
            ctx.add_message_stream(stream);
            tracing::info!(master = %act.address(), holdings = reg.holdings.len(), capacity = %reg.capacity, "foreman connected upstream");
            act.capacity = reg.capacity;
            outbox.deliver(ToMaster::Register {
                resources: reg.capacity,
                holdings: reg.holdings,
                depth: act.cfg.depth.max(1),
                max_jobs: 0,
                tags: act.cfg.tags.clone(),
                token: act.cfg.token.clone(),
            });
            for hash in reg.fetching {
                outbox.deliver(ToMaster::FetchBlob { hash });
            }
            act.outbox = Some(outbox);
            act.backoff.reset();
            // Results still owed follow the registration (including any that
            // finished while it was being made).
            let master = act.master.clone();
            ctx.spawn(master.send(Forwards).into_actor(act).map(|res, act, _| {
                if let Ok(results) = res {
                    act.send_results(results);
                }
            }));
        }));
    }

    fn send_results(&self, results: Vec<pilotq_wire::JobResult>) {
        if let Some(ob) = &self.outbox {
            crate::connect::deliver_results(ob, results, self.cfg.max_frame);
        }
    }

    fn lost(&mut self, ctx: &mut Context<Self>, why: &str) {
        if let Some(ob) = self.outbox.take() {
            ob.closed.cancel();
            self.retry(ctx, &format!("lost the master ({why})"));
        }
    }
}

impl Actor for Upstream {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(1024);
        self.connect(ctx);
        ctx.run_interval(self.cfg.heartbeat, |act, _| {
            if let Some(ob) = &act.outbox {
                ob.deliver(ToMaster::Heartbeat);
            }
        });
    }
}

impl Handler<Incoming> for Upstream {
    type Result = ();

    fn handle(&mut self, Incoming(gen, item): Incoming, ctx: &mut Context<Self>) {
        if gen != self.generation {
            return;
        }
        match item {
            None => self.lost(ctx, "connection closed"),
            Some(Err(e)) => self.lost(ctx, &e.to_string()),
            // From our own master, at most as many as it dispatches (bounded
            // by our capacity): do_send into the local master is bounded too.
            Some(Ok(FromMaster::Dispatch(a))) => self.master.do_send(Adopt(a)),
            Some(Ok(FromMaster::Kill(k))) => self.master.do_send(UpstreamKill(k)),
            Some(Ok(FromMaster::Ack(a))) => self.master.do_send(Forwarded(a)),
            Some(Ok(FromMaster::Drained)) => {}
            Some(Ok(FromMaster::Blob { hash, bytes })) => {
                self.master.do_send(BlobFetched { hash, bytes })
            }
            Some(Ok(FromMaster::Error { message })) => {
                self.lost(ctx, &format!("master said: {message}"))
            }
            Some(Ok(other)) => {
                let what: String = format!("{other:?}").chars().take(60).collect();
                tracing::warn!("unexpected message from the master: {what}");
            }
        }
    }
}

impl Handler<Up> for Upstream {
    type Result = ();

    /// While disconnected these are dropped: results stay in the `forward`
    /// tree and go up after the next registration; starts are in the
    /// holdings; the capacity is in the registration.
    fn handle(&mut self, m: Up, _ctx: &mut Context<Self>) {
        match m {
            Up::Capacity(c) => {
                self.capacity = c;
                if let Some(ob) = &self.outbox {
                    ob.deliver(ToMaster::Capacity { resources: c });
                }
            }
            Up::Started(s) => {
                if let Some(ob) = &self.outbox {
                    ob.deliver(ToMaster::Started(s));
                }
            }
            Up::Finished(r) => self.send_results(r),
            // In the holdings of the next registration if the link is down.
            Up::Adopted(a) => {
                if let Some(ob) = &self.outbox {
                    ob.deliver(ToMaster::Adopted(a));
                }
            }
            // Asked again at the next registration if the link is down.
            Up::FetchBlob(hash) => {
                if let Some(ob) = &self.outbox {
                    ob.deliver(ToMaster::FetchBlob { hash });
                }
            }
        }
    }
}
