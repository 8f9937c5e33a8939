//! The `drgitops` binary: install the TLS crypto provider, parse the command line, run.

use clap::Parser;

fn main() -> std::process::ExitCode {
    // Ignoring the result is deliberate: it fails only if a provider is already installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    drgitops::cli::run(drgitops::cli::Cli::parse())
}
