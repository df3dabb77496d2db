//! What runs for one role under one work dir, by id: a supervisor and its
//! current child. The pid files are the record; `/proc` is the truth
//! check — a process whose pid file is missing (its supervisor was killed
//! between spawning it and writing the file) is still found by its command
//! line, which names the work dir.

use super::{pid_file, Layout};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The live processes of one id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Slot {
    pub supervisors: BTreeSet<i32>,
    pub children: BTreeSet<i32>,
}

impl Slot {
    pub fn is_empty(&self) -> bool {
        self.supervisors.is_empty() && self.children.is_empty()
    }

    fn merge(&mut self, other: Slot) {
        self.supervisors.extend(other.supervisors);
        self.children.extend(other.children);
    }
}

/// Ids whose pid files name live processes of ours; stale pid files are
/// removed on the way.
pub fn from_pid_files(layout: &Layout) -> BTreeMap<u32, Slot> {
    let mut slots: BTreeMap<u32, Slot> = BTreeMap::new();
    let Ok(dir) = std::fs::read_dir(layout.pids_dir()) else {
        return slots;
    };
    for entry in dir.flatten() {
        let name = entry.file_name();
        let Some((id, supervisor)) = layout.parse_pid_file_name(&name.to_string_lossy()) else {
            continue;
        };
        let path = entry.path();
        if supervisor {
            if let Some(pid) = pid_file::live(&path, |a| layout.supervisor_id(a) == Some(id)) {
                slots.entry(id).or_default().supervisors.insert(pid);
            }
        } else if let Some(pid) = pid_file::live(&path, |a| layout.is_child(a, id)) {
            slots.entry(id).or_default().children.insert(pid);
        }
    }
    slots
}

/// Ids with live processes of ours, found by their command lines.
pub fn from_proc(layout: &Layout) -> BTreeMap<u32, Slot> {
    let mut slots: BTreeMap<u32, Slot> = BTreeMap::new();
    for pid in all_pids() {
        let Some(argv) = pid_file::cmdline(pid) else {
            continue;
        };
        if let Some(id) = layout.supervisor_id(&argv) {
            if pid_file::alive(pid) {
                slots.entry(id).or_default().supervisors.insert(pid);
            }
        } else if let Some(id) = layout.child_id(&argv) {
            if pid_file::alive(pid) {
                slots.entry(id).or_default().children.insert(pid);
            }
        }
    }
    slots
}

/// Everything that runs: the pid files' processes and whatever `/proc`
/// adds.
pub fn running(layout: &Layout) -> BTreeMap<u32, Slot> {
    let mut slots = from_pid_files(layout);
    for (id, s) in from_proc(layout) {
        slots.entry(id).or_default().merge(s);
    }
    slots
}

/// Live processes whose working directory is inside `root`: the jobs of
/// workers that were killed before they could stop them.
pub fn processes_inside(root: &Path) -> Vec<i32> {
    let me = std::process::id() as i32;
    all_pids()
        .filter(|pid| *pid != me)
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd.starts_with(root))
        })
        .filter(|pid| pid_file::alive(*pid))
        .collect()
}

fn all_pids() -> impl Iterator<Item = i32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
}
