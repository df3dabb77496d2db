//! `condor_status`: see `pilotq::condor::condor_status`.

fn main() {
    pilotq::reset_sigpipe();
    std::process::exit(pilotq::condor::condor_status::main(
        std::env::args().skip(1).collect(),
    ));
}
