//! `pilotq journal at TIME|SEQ`: the table as it was then — a replay
//! (`Table::apply`) of every event up to that point, from the newest
//! snapshot at or before it when the journal's early events are gone
//! (sealed files retired). The point is a prefix of the journal: a time
//! stops at the first event stored after it, so the table shown is one the
//! master really had.

use super::point::Point;
use crate::event::Envelope;
use crate::table::{JobState, Table};
use pilotq_wire::JobId;
use serde::Serialize;
use std::collections::BTreeMap;

/// Replays `events` (in order, from `start`'s sequence + 1 on) onto
/// `start`'s table until `point`; returns the table and the last event
/// applied `(seq, stored time)`.
pub fn table_at<E>(
    start: Option<(u64, Table)>,
    events: impl IntoIterator<Item = Result<(u64, Envelope), E>>,
    point: Point,
) -> Result<(Table, Option<(u64, u64)>), E> {
    let (from, mut table) = match start {
        Some((seq, t)) => (seq + 1, t),
        None => (1, Table::new()),
    };
    let mut last = None;
    for item in events {
        let (seq, env) = item?;
        if seq < from {
            continue;
        }
        if !point.covers(seq, env.t) {
            break;
        }
        table.apply(&env.e);
        last = Some((seq, env.t));
    }
    Ok((table, last))
}

/// The jobs of one state, listed up to a cap.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Listed {
    pub count: u64,
    pub jobs: Vec<String>,
    /// Jobs not listed (over the cap).
    pub more: u64,
}

impl Listed {
    fn add(&mut self, id: JobId, cap: usize) {
        self.count += 1;
        if self.jobs.len() < cap {
            self.jobs.push(id.to_string());
        } else {
            self.more += 1;
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HolderAt {
    pub holder: String,
    pub jobs: Listed,
}

/// What `at` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableAt {
    /// The last event applied `(seq, stored time)`; None: none.
    pub seq: Option<u64>,
    pub t: Option<u64>,
    /// The snapshot the replay started from, if any.
    pub snapshot: Option<u64>,
    /// The table's counts (HTCondor's: idle includes assigned).
    pub idle: u64,
    pub running: u64,
    pub held: u64,
    pub completed: u64,
    pub removed: u64,
    pub restarts: u64,
    /// Holders with jobs out on them.
    pub holders: Vec<HolderAt>,
    /// The jobs in the queue by state: `idle`, `assigned`, `running`,
    /// `held`, and `completed`/`removed` for those still in the queue
    /// (jobs that left it for the history store are only counted above).
    pub states: BTreeMap<&'static str, Listed>,
}

fn state_name(s: &JobState) -> &'static str {
    match s {
        JobState::Idle => "idle",
        JobState::Assigned { .. } => "assigned",
        JobState::Running { .. } => "running",
        JobState::Held { .. } => "held",
        JobState::Completed { .. } => "completed",
        JobState::Removed => "removed",
    }
}

/// Summarises `table`: counts, holders and the jobs in each state, each
/// list cut at `cap` (`usize::MAX`: all).
pub fn describe(
    table: &Table,
    last: Option<(u64, u64)>,
    snapshot: Option<u64>,
    cap: usize,
) -> TableAt {
    let c = table.counts();
    let left = table.left();
    let mut holders: Vec<HolderAt> = table
        .holders()
        .map(|(h, _)| {
            let mut jobs = Listed::default();
            for id in table.jobs_on(h) {
                jobs.add(id, cap);
            }
            HolderAt {
                holder: h.to_string(),
                jobs,
            }
        })
        .collect();
    holders.sort_by(|a, b| a.holder.cmp(&b.holder));
    let mut states: BTreeMap<&'static str, Listed> = BTreeMap::new();
    for (cid, cluster) in table.clusters() {
        for proc in cluster.procs_in_queue() {
            if let Some(r) = cluster.job(proc) {
                states.entry(state_name(&r.job.state)).or_default().add(
                    JobId {
                        cluster: *cid,
                        proc,
                    },
                    cap,
                );
            }
        }
    }
    TableAt {
        seq: last.map(|l| l.0),
        t: last.map(|l| l.1),
        snapshot,
        idle: c.idle,
        running: c.running,
        held: c.held,
        completed: c.completed + left.completed,
        removed: c.removed + left.removed,
        restarts: table.restarts(),
        holders,
        states,
    }
}

/// The newest readable snapshot covering `seq` or less: where `at` starts
/// when the journal no longer holds its first events. `None` when there is
/// none (the caller then replays from the first event kept, and says so).
pub fn snapshot_at_or_before(
    store: &crate::Store,
    seq: u64,
) -> Result<Option<(u64, Table)>, crate::JournalError> {
    for (s, bytes) in store.snapshots_within_events()?.into_iter().rev() {
        if s <= seq {
            if let Some(t) = crate::snapshot::decode(&bytes) {
                return Ok(Some((s, t)));
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::super::tracker::tests::story;
    use super::*;

    fn stamped() -> Vec<Result<(u64, Envelope), std::convert::Infallible>> {
        story()
            .into_iter()
            .enumerate()
            .map(|(i, e)| Ok((i as u64 + 1, Envelope { v: 2, t: e.at(), e })))
            .collect()
    }

    #[test]
    fn at_any_point_is_the_replay_of_the_prefix() {
        let events: Vec<_> = story();
        for k in 0..=events.len() {
            let mut want = Table::new();
            events[..k].iter().for_each(|e| want.apply(e));
            let (got, last) = table_at(None, stamped(), Point::Seq(k as u64)).unwrap();
            assert_eq!(got, want, "at #{k}");
            assert_eq!(last.map(|l| l.0), (k > 0).then_some(k as u64));
            // From a snapshot of an earlier prefix, the same.
            let mid = k / 2;
            let mut snap = Table::new();
            events[..mid].iter().for_each(|e| snap.apply(e));
            let (got, _) =
                table_at(Some((mid as u64, snap)), stamped(), Point::Seq(k as u64)).unwrap();
            assert_eq!(got, want, "at #{k} from #{mid}");
        }
    }

    #[test]
    fn a_time_stops_at_the_first_event_after_it() {
        // Events 4..6 are dispatches at 2,000; event 7 a start at 3,000.
        let (t, last) = table_at(None, stamped(), Point::Time(2_999)).unwrap();
        assert_eq!(last, Some((6, 2_000)));
        let d = describe(&t, last, None, 100);
        assert_eq!((d.idle, d.running), (8, 0));
        assert_eq!(d.holders.len(), 2);
        assert_eq!(d.holders[0].holder, "w1");
        assert_eq!(d.holders[0].jobs.jobs, ["1.0", "1.1"]);
        assert_eq!(d.states["assigned"].count, 3);
        assert_eq!(d.states["idle"].count, 5);
    }

    #[test]
    fn long_lists_are_cut_but_counted() {
        let (t, last) = table_at(None, stamped(), Point::Seq(3)).unwrap();
        let d = describe(&t, last, None, 2);
        assert_eq!(d.states["idle"].count, 8);
        assert_eq!(d.states["idle"].jobs, ["1.0", "1.1"]);
        assert_eq!(d.states["idle"].more, 6);
        let all = describe(&t, last, None, usize::MAX);
        assert_eq!(all.states["idle"].jobs.len(), 8);
    }
}
