//! The HTCondor-compatible face's own languages: ClassAd expressions (and submit descriptions).
pub mod classad;
pub mod condor_submit;
mod quoting;
pub mod submit_description;
