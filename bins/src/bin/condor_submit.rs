//! `condor_submit`: see `pilotq::condor::condor_submit`.

fn main() {
    pilotq::reset_sigpipe();
    std::process::exit(pilotq::condor::condor_submit::main(
        std::env::args().skip(1).collect(),
    ));
}
