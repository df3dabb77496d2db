//! Any text as a submit file: parsing never panics; it queues or it names
//! the line at fault.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pilotq::condor::submit_description::parse;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Err(e) = parse(text) {
        assert!(e.line >= 1, "an error names a line: {e:?}");
    }
});
