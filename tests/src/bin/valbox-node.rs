//! The `valbox` program, built inside this package so that the tests can
//! run nodes as processes of their own (`CARGO_BIN_EXE_valbox-node`) and
//! kill them with SIGKILL.

#[tokio::main]
async fn main() {
    valbox::cli::main().await
}
