//! pilotq's HTCondor face: the `condor_*` commands and the languages they
//! speak.
//!
//! | module | what it holds |
//! |---|---|
//! | [`classad`] | the ClassAd expression subset: parse once, evaluate per job, three-valued logic |
//! | [`submit_description`] | the submit-description language of `condor_submit` (quoting in `quoting`) |
//! | [`job_ad`] | a job as a ClassAd: HTCondor's attributes and the job's custom ones |
//! | [`print_format`] | `-format` and `-af` rendering |
//! | [`job_output`] | job ads on stdout for `condor_q` and `condor_history`: `-long`, `-json`, `-jsonl`, `-format`, `-af`, and the option-name helpers |
//! | [`condor_submit`], [`condor_q`], [`condor_history`], [`condor_rm`], [`condor_status`] | the commands, each `main(args) -> exit code` |

pub mod classad;
pub mod condor_history;
pub mod condor_q;
pub mod condor_rm;
pub mod condor_status;
pub mod condor_submit;
pub mod job_ad;
pub mod job_output;
pub mod print_format;
mod quoting;
pub mod submit_description;
