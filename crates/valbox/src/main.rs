#[tokio::main]
async fn main() {
    valbox::cli::main().await
}
