//! Client requests: submit, query, remove, status.

use super::Master;
use crate::config::MasterConfig;
use crate::outbox::Outbox;
use crate::session::Grant;
use actix::prelude::*;
use pilotq_journal::{now_ms, Event};
use pilotq_wire::message::{Attempt, MasterStatus};
use pilotq_wire::{ClusterId, FromMaster, JobId, JobSpec, Selector};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// A Dispatch frame's bytes besides its assignments.
const FRAME_OVERHEAD: usize = 64;

/// Jobs per `Jobs` frame when answering a query.
const QUERY_CHUNK: usize = 2000;

/// Query chunks that may wait in a client's outbox: enough to keep its
/// socket busy, few enough that an answer costs megabytes, not gigabytes.
const QUERY_CHUNKS_AHEAD: usize = 4;

/// A client that has not read its answer's queued chunks for this long is
/// cut off, as the outbox cuts any peer too slow to read.
const QUERY_STALL: std::time::Duration = std::time::Duration::from_secs(60);

/// The rest of a query answer, from `ids[next]` on.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct SendQueryChunks {
    ob: Outbox<FromMaster>,
    ids: Vec<JobId>,
    next: usize,
    /// Since when the client has left `QUERY_CHUNKS_AHEAD` chunks unread.
    stalled_since: Option<std::time::Instant>,
}

impl Handler<SendQueryChunks> for Master {
    type Result = ();

    fn handle(&mut self, mut q: SendQueryChunks, ctx: &mut Context<Self>) {
        if q.ob.is_closed() {
            return;
        }
        if q.ob.pending() >= QUERY_CHUNKS_AHEAD {
            let since = *q.stalled_since.get_or_insert_with(std::time::Instant::now);
            if since.elapsed() > QUERY_STALL {
                tracing::warn!(
                    conn = q.ob.conn,
                    "client has not read its query answer for {} s; closing its connection",
                    QUERY_STALL.as_secs()
                );
                q.ob.closed.cancel();
                return;
            }
            // Not read yet: look again soon.
            ctx.run_later(std::time::Duration::from_millis(2), move |_, ctx| {
                ctx.notify(q)
            });
            return;
        }
        q.stalled_since = None;
        let end = (q.next + QUERY_CHUNK).min(q.ids.len());
        let jobs = q.ids[q.next..end]
            .iter()
            .filter_map(|id| self.table.view(*id))
            .collect();
        let last = end == q.ids.len();
        q.next = end;
        // Delivered once durable, and only then is the next chunk built: one
        // chunk in the making at a time, and other requests are served in
        // between.
        let me = ctx.address();
        self.after_durable(move || {
            if q.ob.deliver(FromMaster::Jobs { jobs, last }) && !last {
                me.do_send(q);
            }
        });
    }
}

/// Why a submission claiming `owner` is refused from this connection: on
/// the Unix socket the kernel says who the client is, and only a super
/// user may submit for someone else.
pub(super) fn owner_refusal(cfg: &MasterConfig, grant: &Grant, owner: &str) -> Option<String> {
    let user = grant.proven_owner()?;
    if user == owner || cfg.acts_for(Some(user)).is_none() {
        return None;
    }
    Some(format!(
        "submission refused: it names Owner {owner:?}, but this connection is user {user:?}, who may submit only their own jobs"
    ))
}

impl Master {
    pub(crate) fn on_submit(
        &mut self,
        ctx: &mut Context<Self>,
        ob: Outbox<FromMaster>,
        mut spec: JobSpec,
        count: u32,
        executable: Vec<u8>,
    ) {
        let refuse = |message: String| {
            ob.deliver(FromMaster::Error { message });
        };
        if count == 0 {
            return refuse("nothing to submit: count is 0".into());
        }
        // Looked at afresh: space may have gone since the last tick.
        self.low_disk = self.disk.check().err();
        if let Some(why) = &self.low_disk {
            return refuse(format!(
                "submission refused: {why}; running jobs go on, and submissions are taken again once space returns"
            ));
        }
        if count > self.cfg.max_submit {
            return refuse(format!(
                "submission of {count} jobs exceeds this master's maximum of {} per submission",
                self.cfg.max_submit
            ));
        }
        // It must fit in a Dispatch frame with its spec and the job
        // wrapper, or no holder could ever be sent it.
        let needed = executable
            .len()
            .saturating_add(super::dispatch::spec_size_hint(&spec))
            .saturating_add(self.wrapper.as_ref().map_or(0, |(_, w)| w.len()))
            .saturating_add(super::dispatch::ASSIGNMENT_OVERHEAD + FRAME_OVERHEAD);
        if needed > self.cfg.max_frame {
            return refuse(format!(
                "the executable is {} bytes: too large to send to workers in frames of at most {} bytes (--max-frame on the master and its workers)",
                executable.len(),
                self.cfg.max_frame
            ));
        }
        let hash = hex::encode(Sha256::digest(&executable));
        if hash != spec.executable {
            return refuse(format!(
                "executable bytes do not match their hash (got {hash}, spec says {})",
                spec.executable
            ));
        }
        if spec.cmd.is_empty() {
            return refuse("no executable named".into());
        }
        // Files are written as their owner, which only root can do for
        // another user: a master that is not root takes others' jobs only if
        // they name no file (`owner_files.rs`). A foreman writes no files.
        if !self.seat.is_local() {
            let files = [&spec.output, &spec.error, &spec.log];
            if let Err(message) = crate::owner_files::may_write_for(&spec.owner, &files) {
                return refuse(message);
            }
        }
        let limit = self.cfg.max_jobs_per_owner;
        if limit > 0 {
            let live = self.table.live_jobs_of(&spec.owner);
            if live.saturating_add(u64::from(count)) > limit {
                return refuse(format!(
                    "submission refused: {} has {live} jobs in the queue, and {count} more would pass this master's limit of {limit} per owner (--max-jobs-per-owner)",
                    if spec.owner.is_empty() { "this owner" } else { &spec.owner }
                ));
            }
        }
        // Every job asks for at least one core: dispatch relies on it.
        spec.request.cores = spec.request.cores.max(1);
        let Some(next) = self.table.last_cluster().0.checked_add(1) else {
            return refuse("this journal has used every cluster id".into());
        };
        let cluster = ClusterId(next);
        self.remember_blob(hash.clone(), executable.clone());
        // Always handed to the writer, even when stored already (the writer
        // stores it once): a blob collection under way keeps what is
        // appended after it began (`blob_gc.rs`), and this cluster needs it.
        let blobs = vec![(hash, executable)];
        let at = now_ms();
        let event = Event::ClusterSubmitted {
            cluster,
            count,
            spec: Box::new(spec),
            at,
        };
        self.commit(vec![event], blobs, move || {
            ob.deliver(FromMaster::Submitted { cluster, count });
        });
        self.schedule_dispatch(ctx);
    }

    /// Answers in chunks built as the client reads them: a million-job
    /// answer never sits in memory whole (it took the master from 330 MB to
    /// 1.2 GB when it did). The table shows decisions as soon as they are
    /// made, before they are durable, so each chunk goes out only after a
    /// barrier: what it shows is durable, and so is everything acknowledged
    /// before the query. Later chunks may show jobs a little further on than
    /// earlier ones, as `condor_q` may.
    pub(crate) fn on_query(
        &mut self,
        ctx: &mut Context<Self>,
        ob: Outbox<FromMaster>,
        selectors: Vec<Selector>,
    ) {
        let ids = self.table.select(&selectors);
        ctx.notify(SendQueryChunks {
            ob,
            ids,
            next: 0,
            stalled_since: None,
        });
    }

    pub(crate) fn on_remove(
        &mut self,
        ob: Outbox<FromMaster>,
        selectors: Vec<Selector>,
        owner: Option<String>,
    ) {
        let only = self.cfg.acts_for(owner.as_deref());
        self.remove_jobs(selectors, only.as_deref(), move |removed| {
            ob.deliver(FromMaster::Removed { jobs: removed });
        });
    }

    /// Removes the selected jobs; once durable, their holders are told to
    /// kill them and `then` hears how many were removed.
    /// `only`: remove only this owner's jobs (`None`: anyone's).
    pub(crate) fn remove_jobs(
        &mut self,
        selectors: Vec<Selector>,
        only: Option<&str>,
        then: impl FnOnce(u64) + Send + 'static,
    ) {
        let at = now_ms();
        let mut events = Vec::new();
        let mut removed = 0u64;
        let mut kills: HashMap<String, Vec<Attempt>> = HashMap::new();
        let mut note_kill = |holder: &str, job: JobId, attempt: u32| {
            kills.entry(holder.to_string()).or_default().push(Attempt {
                job,
                attempt,
                key: None,
            });
        };
        let whole: Vec<ClusterId> = if selectors.is_empty() {
            vec![] // an empty removal removes nothing (unlike a query)
        } else {
            self.table.selected_clusters(&selectors)
        };
        let owned = |t: &pilotq_journal::Table, c: ClusterId| {
            only.is_none_or(|o| t.cluster(c).is_some_and(|c| c.spec.owner == o))
        };
        let whole: Vec<ClusterId> = whole
            .into_iter()
            .filter(|c| owned(&self.table, *c))
            .collect();
        for cid in &whole {
            let c = self.table.cluster(*cid).expect("selected");
            let live = c.live();
            if live == 0 {
                continue;
            }
            removed += live;
            for (proc, j) in c.records() {
                if let Some((h, a)) = j.state.out_on() {
                    note_kill(
                        h,
                        JobId {
                            cluster: *cid,
                            proc,
                        },
                        a,
                    );
                }
            }
            events.push(Event::ClusterRemoved { cluster: *cid, at });
        }
        for s in &selectors {
            let Selector::Job(id) = s else { continue };
            if whole.contains(&id.cluster) || !owned(&self.table, id.cluster) {
                continue;
            }
            let Some(r) = self.table.job(*id) else {
                continue;
            };
            if r.job.state.status().is_final() {
                continue;
            }
            if let Some((h, a)) = r.job.state.out_on() {
                note_kill(h, *id, a);
            }
            removed += 1;
            events.push(Event::JobRemoved { job: *id, at });
        }
        let targets: Vec<_> = kills
            .into_iter()
            .filter_map(|(h, k)| self.outbox_of(&h).map(|o| (o, k)))
            .collect();
        self.commit(events, vec![], move || {
            for (hob, k) in targets {
                hob.deliver(FromMaster::Kill(k));
            }
            then(removed);
        });
    }

    pub(crate) fn on_status(&mut self, ob: Outbox<FromMaster>) {
        let c = self.table.counts();
        let connected = self.holders.values().filter(|h| h.outbox.is_some());
        let (holders, cores) = connected.fold((0u64, 0u64), |(n, c), h| {
            (n + 1, c + u64::from(h.resources.cores))
        });
        let status = MasterStatus {
            name: self.cfg.name.clone(),
            idle: c.idle,
            running: c.running,
            held: c.held,
            completed: c.completed,
            removed: c.removed,
            holders,
            cores,
            journal_seq: 0,
            history_completed: self.table.left().completed,
            history_removed: self.table.left().removed,
        };
        self.after_durable(move || {
            ob.deliver(FromMaster::Status(status));
        });
    }
}
