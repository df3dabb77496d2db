//! `condor_q`: see `pilotq::condor::condor_q`.

fn main() {
    pilotq::reset_sigpipe();
    std::process::exit(pilotq::condor::condor_q::main(
        std::env::args().skip(1).collect(),
    ));
}
