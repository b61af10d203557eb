//! Lines for the terminal that never panic on a closed pipe: stdout for a
//! command's answer, stderr for progress and warnings.

use crate::error::{Error, Result};

/// Print `text` on standard output. A reader that has gone (`crmbench pg
/// status | head -1`) is not an error: the rest is dropped and the command
/// ends with its own exit code, where `print!` panicked (exit 101). Any
/// other failure to write (a full disk under a redirection) is an error.
pub(crate) fn out(text: impl AsRef<str>) -> Result<()> {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_ref().as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Error::io("writing", "standard output", e))
        }
        _ => Ok(()),
    }
}

/// `text` and a newline on standard error; a failure to write is dropped
/// (there is nowhere left to say it), never a panic.
pub(crate) fn err_line(text: impl AsRef<str>) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr().lock(), "{}", text.as_ref());
}
