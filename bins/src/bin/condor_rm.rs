//! `condor_rm`: see `pilotq::condor::condor_rm`.

fn main() {
    pilotq::reset_sigpipe();
    std::process::exit(pilotq::condor::condor_rm::main(
        std::env::args().skip(1).collect(),
    ));
}
