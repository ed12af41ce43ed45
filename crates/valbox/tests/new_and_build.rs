//! `valbox new`, `valbox build` and `valbox deploy NAME` (which builds
//! first), run as the real binary in a fresh directory against a real
//! server: a Python HTTP val and a JavaScript script val, from nothing to
//! answering; and email vals in JavaScript, TypeScript and Python, built
//! and deployed as email vals. (A new Rust project is only written here:
//! building one compiles std for wasm, which takes minutes;
//! `scripts/build-vals` builds the Rust examples the same way.)

use std::path::Path;

use tokio::process::Command;

mod common;
use common::repo;

/// Run the valbox binary in `dir`; returns stdout, failing with stderr.
async fn valbox(dir: &Path, args: &[&str], server: Option<(&str, &str)>) -> String {
    let mut command = Command::new(env!("CARGO_BIN_EXE_valbox"));
    command.args(args).current_dir(dir);
    if let Some((url, token)) = server {
        command.env("VALBOX_URL", url).env("VALBOX_TOKEN", token);
    }
    let out = command.output().await.expect("running valbox");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "valbox {args:?}: {stdout}\n{stderr}");
    stdout
}

async fn failing(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_valbox"))
        .args(args)
        .current_dir(dir)
        .output()
        .await
        .unwrap();
    assert!(!out.status.success(), "valbox {args:?} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The component `valbox build` said it built (its last line).
fn built(said: &str) -> &str {
    let last = said.lines().last().unwrap_or_default();
    last.strip_prefix("built ").expect(said)
}

/// What dev's script val `name` answers to the Run API with `args`.
async fn run_script(base: &str, name: &str, args: serde_json::Value) -> serde_json::Value {
    reqwest::Client::new()
        .post(format!("{base}/v1/run/dev.{name}"))
        .json(&serde_json::json!({ "args": args }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// A server on a loopback port with the user `dev`; answers it, its URL,
/// dev's token and its data directory (removed when dropped).
async fn start_server() -> (
    valbox_server::server::Server,
    String,
    String,
    tempfile::TempDir,
) {
    let data = tempfile::tempdir().unwrap();
    let token = valbox::cli::create_user(data.path(), "dev", "dev@example.com")
        .await
        .unwrap();
    let mut config =
        valbox_server::config::Config::new(data.path(), "127.0.0.1:0".parse().unwrap());
    // The tests' shared cache: the language engines compile once per run.
    config.compile_cache = repo().join("target/test-compile-cache.sqlite3");
    let server = valbox_server::server::Server::start(config).await.unwrap();
    let base = format!("http://{}", server.addr);
    (server, base, token, data)
}

/// The packages `npm ci` would install in a new JavaScript project,
/// already in sdk/js.
fn link_node_modules(project: &Path) {
    std::os::unix::fs::symlink(
        repo().join("sdk/js/node_modules"),
        project.join("node_modules"),
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn new_projects_build_deploy_and_answer() {
    // The toolchains the examples use (componentize-py, sdk/js's packages).
    common::build_vals();

    let (server, base, token, _data) = start_server().await;
    let work = tempfile::tempdir().unwrap();
    let here = work.path();

    // Python, HTTP: `valbox deploy NAME` in the project builds it first.
    let said = valbox(here, &["new", "greet", "--lang", "python"], None).await;
    assert!(said.contains("valbox build"), "{said}");
    for file in ["app.py", "valbox.py", "valbox.json", "wit/worlds.wit"] {
        assert!(here.join("greet").join(file).is_file(), "{file}");
    }
    let said = valbox(
        &here.join("greet"),
        &["deploy", "greet"],
        Some((&base, &token)),
    )
    .await;
    assert!(
        said.contains("built ") && said.contains("dist/greet.wasm"),
        "{said}"
    );
    let hello = reqwest::get(format!("{base}/x/dev/greet/?name=Ada"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(hello, "Hello, Ada!");

    // JavaScript, script: built by `valbox build DIR`, then deployed.
    valbox(
        here,
        &["new", "count", "--lang", "js", "--kind", "script"],
        None,
    )
    .await;
    link_node_modules(&here.join("count"));
    let said = valbox(here, &["build", "count"], None).await;
    valbox(
        here,
        &["deploy", "count", built(&said)],
        Some((&base, &token)),
    )
    .await;
    let answer = run_script(&base, "count", serde_json::json!([1, "two", null])).await;
    assert_eq!(answer, serde_json::json!({ "count": 3 }));

    // Rust: a project that depends on this tree's guest SDK.
    valbox(
        here,
        &["new", "rusty", "--lang", "rust", "--kind", "script"],
        None,
    )
    .await;
    let manifest = std::fs::read_to_string(here.join("rusty/Cargo.toml")).unwrap();
    assert!(manifest.contains("guest-sdk"), "{manifest}");
    assert!(here.join("rusty/.cargo/config.toml").is_file());
    assert!(
        std::fs::read_to_string(here.join("rusty/src/lib.rs"))
            .unwrap()
            .contains("script_val!")
    );

    // Mistakes say what to do.
    let empty = here.join("empty");
    std::fs::create_dir(&empty).unwrap();
    assert!(
        failing(&empty, &["build"])
            .await
            .contains("valbox new NAME")
    );
    assert!(
        failing(here, &["new", "greet", "--lang", "js"])
            .await
            .contains("already exists")
    );
    assert!(
        failing(here, &["new", "../x", "--lang", "js"])
            .await
            .contains("not a val name")
    );
    assert!(
        failing(&here.join("greet"), &["build", "--aot"])
            .await
            .contains("--aot compiles JavaScript and TypeScript")
    );
    assert!(
        failing(
            here,
            &["deploy", "count", "x.wasm", "--aot", "--token", "vbx_x"]
        )
        .await
        .contains("deployed as it is")
    );
    let no_weval = Command::new(env!("CARGO_BIN_EXE_valbox"))
        .args(["build", "count", "--aot"])
        .env("WEVAL", here.join("no-such-weval"))
        .current_dir(here)
        .output()
        .await
        .unwrap();
    let said = String::from_utf8_lossy(&no_weval.stderr);
    assert!(!no_weval.status.success());
    assert!(
        said.contains("no-such-weval") && said.contains("cargo install weval --version 0.5.0"),
        "{said}"
    );
    // Compiled ahead of time where weval is installed (scripts/bench
    // installs it; CI does not, as building it takes ten minutes).
    if std::process::Command::new("weval")
        .arg("--version")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(" 0.5."))
    {
        let said = valbox(here, &["build", "count", "--aot"], None).await;
        let deploy = ["deploy", "count-aot", built(&said)];
        valbox(here, &deploy, Some((&base, &token))).await;
        let answer = run_script(&base, "count-aot", serde_json::json!([1, 2])).await;
        assert_eq!(answer, serde_json::json!({ "count": 2 }));
    }
    server.shutdown().await.unwrap();
}

/// `valbox new --kind email` in every language writes a project that
/// builds into an email val: the server takes it as one (it exports
/// `valbox:platform/email-handler`). Delivering mail to it is left to the
/// mail server's tests.
#[tokio::test(flavor = "multi_thread")]
async fn new_email_projects_build_in_every_language() {
    common::build_vals();

    let (server, base, token, _data) = start_server().await;
    let client = reqwest::Client::new();
    let work = tempfile::tempdir().unwrap();
    let here = work.path();
    for (name, lang, source) in [
        ("inbox-js", "js", "val.js"),
        ("inbox-ts", "ts", "val.ts"),
        ("inbox-py", "python", "app.py"),
    ] {
        valbox(
            here,
            &["new", name, "--lang", lang, "--kind", "email"],
            None,
        )
        .await;
        let project = here.join(name);
        let code = std::fs::read_to_string(project.join(source)).unwrap();
        assert!(code.contains("receive"), "{name}: {code}");
        assert!(project.join("wit/email-handler.wit").is_file(), "{name}");
        if lang != "python" {
            link_node_modules(&project);
        }
        let said = valbox(here, &["build", name], None).await;
        let wasm = built(&said);
        let wit = valbox_runtime::component_wit(&std::fs::read(wasm).unwrap()).unwrap();
        assert!(
            wit.contains("export valbox:platform/email-handler@0.1.0;"),
            "{name}: {wit}"
        );
        valbox(here, &["deploy", name, wasm], Some((&base, &token))).await;
        let val: serde_json::Value = client
            .get(format!("{base}/v2/alias/vals/dev/{name}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let versions: serde_json::Value = client
            .get(format!(
                "{base}/v2/vals/{}/versions",
                val["id"].as_str().unwrap()
            ))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(versions["data"][0]["kind"], "email", "{name}: {versions}");
    }

    // Rust: written only (building it takes minutes: see the top).
    valbox(
        here,
        &["new", "inbox-rs", "--lang", "rust", "--kind", "email"],
        None,
    )
    .await;
    let code = std::fs::read_to_string(here.join("inbox-rs/src/lib.rs")).unwrap();
    assert!(code.contains("valbox_sdk::email_val!(receive);"), "{code}");
    server.shutdown().await.unwrap();
}
