//! `condor_q`: see `pilotq::condor::condor_q`.

fn main() {
    // Die quietly on a closed pipe (`condor_q | head`) like other Unix tools.
    // SAFETY: resetting a signal disposition before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    std::process::exit(pilotq::condor::condor_q::main(
        std::env::args().skip(1).collect(),
    ));
}
