//! The HTCondor-compatible face's own languages: ClassAd expressions (and submit descriptions).
pub mod classad;
pub mod condor_submit;
mod quoting;
pub mod submit_description;
pub mod condor_q;
pub mod condor_status;
pub mod job_ad;
pub mod print_format;
