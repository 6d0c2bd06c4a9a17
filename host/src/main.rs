//! The `passerelle` binary. See `passerelle --help`.

fn main() -> std::process::ExitCode {
    passerelle::cli::main()
}
