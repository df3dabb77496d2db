//! The HTCondor-compatible face's own languages: ClassAd expressions (and submit descriptions).
mod quoting;
pub mod submit_description;
