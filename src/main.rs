//! The `crmbench` binary: everything lives in the library; see `crmbench --help`.

fn main() -> std::process::ExitCode {
    crmbench::cli::run(std::env::args_os())
}
