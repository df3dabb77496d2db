//! Bounds on what the master accepts in one request, checked before any
//! handler sees it. The frame limit bounds a message's bytes; these bound
//! what fits in those bytes and costs the master more than bytes: entries
//! it must look up one by one, names it keeps, numbers it adds up. A
//! request past a bound is refused whole, with the bound in the error;
//! nothing of it is applied.

use pilotq_wire::{HoldingState, Resources, ToMaster};

/// Selectors one client request may carry: a `condor_rm` of 10,000 ids is a
/// script's work, a million is a flood the master would walk for everyone.
pub const MAX_SELECTORS: usize = 10_000;

/// Entries (start reports, results, adoptions, holdings) in one holder
/// message. A worker sends one per job it holds; a foreman of 10,000 busy
/// cores at depth 2 sends 20,000 at a registration.
pub const MAX_HOLDER_ENTRIES: usize = 100_000;

/// Tags a holder may offer, and their length.
pub const MAX_TAGS: usize = 64;
pub const MAX_TAG_LEN: usize = 128;

/// An offer past these is no machine's: cores, and memory and disk in MB
/// (1 PiB).
const MAX_OFFER: Resources = Resources::new(1 << 20, 1 << 30, 1 << 30);

/// Why a client request is refused, if it is.
pub(super) fn client_refusal(msg: &ToMaster) -> Option<String> {
    let n = match msg {
        ToMaster::Query { selectors }
        | ToMaster::History { selectors, .. }
        | ToMaster::Remove { selectors, .. }
        | ToMaster::Release { selectors, .. } => selectors.len(),
        _ => return None,
    };
    (n > MAX_SELECTORS).then(|| {
        format!("a request may name at most {MAX_SELECTORS} jobs, clusters or owners; this one names {n}: split it, or select by owner or cluster")
    })
}

/// Why a holder's message is refused, if it is: the holder is then cut off
/// (a worker or foreman that sends these is broken or hostile).
pub(super) fn holder_refusal(msg: &ToMaster, max_frame: usize) -> Option<String> {
    let entries = |what: &str, n: usize| {
        (n > MAX_HOLDER_ENTRIES)
            .then(|| format!("{n} {what} in one message; at most {MAX_HOLDER_ENTRIES}"))
    };
    match msg {
        ToMaster::Register {
            resources,
            holdings,
            tags,
            token,
            ..
        } => entries("holdings", holdings.len())
            .or_else(|| offer_refusal(resources))
            .or_else(|| tags_refusal(tags))
            .or_else(|| (token.len() > 64).then(|| "a holder token over 64 bytes".into()))
            .or_else(|| {
                holdings.iter().find_map(|h| match &h.state {
                    HoldingState::Finished(r) => outputs_refusal(r, max_frame),
                    _ => None,
                })
            }),
        ToMaster::Capacity { resources } => offer_refusal(resources),
        ToMaster::Started(s) => entries("start reports", s.len()),
        ToMaster::Adopted(a) => entries("adoptions", a.len()),
        ToMaster::Finished(rs) => entries("results", rs.len())
            .or_else(|| rs.iter().find_map(|r| outputs_refusal(r, max_frame))),
        ToMaster::FetchBlob { hash } => (hash.len() != 64
            || !hash.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| "a blob is named by its sha256 in hex".into()),
        _ => None,
    }
}

fn offer_refusal(r: &Resources) -> Option<String> {
    (r.cores > MAX_OFFER.cores
        || r.memory_mb > MAX_OFFER.memory_mb
        || r.disk_mb > MAX_OFFER.disk_mb)
        .then(|| format!("an offer of {r} is beyond any machine's"))
}

fn tags_refusal(tags: &[String]) -> Option<String> {
    if tags.len() > MAX_TAGS {
        return Some(format!("{} tags; at most {MAX_TAGS}", tags.len()));
    }
    tags.iter()
        .find(|t| t.len() > MAX_TAG_LEN)
        .map(|t| format!("a tag of {} bytes; at most {MAX_TAG_LEN}", t.len()))
}

/// A result's streams: the holder caps them to fit its frames; the master
/// checks rather than trusts it.
fn outputs_refusal(r: &pilotq_wire::JobResult, max_frame: usize) -> Option<String> {
    let n = r.stdout.len().saturating_add(r.stderr.len());
    (n > max_frame).then(|| {
        format!(
            "the result of {} carries {n} bytes of output, more than a frame ({max_frame})",
            r.job
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use pilotq_wire::message::{Attempt, Started};
    use pilotq_wire::{JobId, JobResult, Outcome, Selector};

    fn result(out: usize) -> JobResult {
        JobResult {
            key: None,
            job: JobId::new(1, 0),
            attempt: 1,
            outcome: Outcome::Exited { code: 0 },
            started_at: 0,
            ended_at: 0,
            stdout: vec![b'x'; out],
            stderr: vec![],
        }
    }

    #[test]
    fn each_bound_refuses_one_past_it_and_takes_what_is_within() {
        let sel = |n| ToMaster::Query {
            selectors: vec![Selector::All; n],
        };
        assert!(client_refusal(&sel(MAX_SELECTORS)).is_none());
        let e = client_refusal(&sel(MAX_SELECTORS + 1)).unwrap();
        assert!(e.contains("at most 10000"), "{e}");

        let started = |n| {
            ToMaster::Started(vec![
                Started {
                    key: None,
                    job: JobId::new(1, 0),
                    attempt: 1,
                    at: 0
                };
                n
            ])
        };
        assert!(holder_refusal(&started(MAX_HOLDER_ENTRIES), 1 << 20).is_none());
        assert!(holder_refusal(&started(MAX_HOLDER_ENTRIES + 1), 1 << 20).is_some());
        let adopted = ToMaster::Adopted(vec![
            Attempt {
                key: None,
                job: JobId::new(1, 0),
                attempt: 1
            };
            MAX_HOLDER_ENTRIES + 1
        ]);
        assert!(holder_refusal(&adopted, 1 << 20).is_some());

        assert!(holder_refusal(&ToMaster::Finished(vec![result(1000)]), 1000).is_none());
        let e = holder_refusal(&ToMaster::Finished(vec![result(1001)]), 1000).unwrap();
        assert!(e.contains("1001 bytes"), "{e}");

        let register = |tags: Vec<String>, cores| ToMaster::Register {
            resources: Resources::new(cores, 1000, 1000),
            holdings: vec![],
            depth: 2,
            max_jobs: 0,
            tags,
            token: vec![0; 16],
        };
        assert!(holder_refusal(&register(vec!["gpu".into()], 64), 1 << 20).is_none());
        assert!(holder_refusal(&register(vec!["t".into(); MAX_TAGS + 1], 64), 1 << 20).is_some());
        assert!(
            holder_refusal(&register(vec!["t".repeat(MAX_TAG_LEN + 1)], 64), 1 << 20).is_some()
        );
        assert!(holder_refusal(&register(vec![], u32::MAX), 1 << 20).is_some());

        let fetch = |h: &str| ToMaster::FetchBlob { hash: h.into() };
        assert!(holder_refusal(&fetch(&"a".repeat(64)), 1 << 20).is_none());
        assert!(holder_refusal(&fetch("../../etc/passwd"), 1 << 20).is_some());
    }
}
