//! Printing for the journal verbs: buffered stdout, where a reader that
//! went away (`| head`) ends the command quietly instead of with an error.

use anyhow::Result;
use std::io::Write;

pub type Out = std::io::BufWriter<std::io::StdoutLock<'static>>;

pub fn out() -> Out {
    std::io::BufWriter::new(std::io::stdout().lock())
}

/// Whether an output error is a closed pipe (then stop, successfully).
pub fn closed(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::BrokenPipe
}

/// Runs `f` over stdout and flushes; a closed pipe is success.
pub fn with_out(f: impl FnOnce(&mut Out) -> Result<()>) -> Result<i32> {
    let mut o = out();
    let r = f(&mut o).and_then(|()| o.flush().map_err(Into::into));
    match r {
        Ok(()) => Ok(0),
        Err(e) if e.downcast_ref::<std::io::Error>().is_some_and(closed) => Ok(0),
        Err(e) => Err(e),
    }
}

/// One value as pretty JSON and a newline.
pub fn json(o: &mut Out, v: &impl serde::Serialize) -> Result<()> {
    serde_json::to_writer_pretty(&mut *o, v)?;
    writeln!(o)?;
    Ok(())
}
