//! `condor_status`: see `pilotq::condor::condor_status`.

fn main() {
    // Die quietly on a closed pipe (`condor_status | head`) like other Unix tools.
    // SAFETY: resetting a signal disposition before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    std::process::exit(pilotq::condor::condor_status::main(
        std::env::args().skip(1).collect(),
    ));
}
