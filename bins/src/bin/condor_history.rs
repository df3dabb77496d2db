//! `condor_history`: see `pilotq::condor::condor_history`.

fn main() {
    pilotq::reset_sigpipe();
    std::process::exit(pilotq::condor::condor_history::main(
        std::env::args().skip(1).collect(),
    ));
}
