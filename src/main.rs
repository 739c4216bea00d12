//! The `groupbuy` binary: everything lives in the library; see `cli`.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    groupbuy::cli::main().await
}
