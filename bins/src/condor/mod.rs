//! The HTCondor-compatible face's own languages: ClassAd expressions (and submit descriptions).
pub mod classad;
mod quoting;
pub mod submit_description;
