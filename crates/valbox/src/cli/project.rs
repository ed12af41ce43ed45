//! `valbox new` and `valbox build`: a val's project in Rust, JavaScript,
//! TypeScript or Python, written ready to build, and built with the right
//! toolchain for its language into one component.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use super::templates;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    Rust,
    Js,
    Ts,
    Python,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Http,
    Script,
    /// Run on a schedule.
    Cron,
    /// Receive the mail sent to the val's address.
    Email,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Http => "http",
            Kind::Script => "script",
            Kind::Cron => "cron",
            Kind::Email => "email",
        }
    }
}

/// `valbox.json`: what `valbox build` needs to know about a project.
#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    name: String,
    lang: Lang,
    kind: Kind,
}

const MANIFEST: &str = "valbox.json";

/// Write a new project `name` in the directory of that name.
pub fn new(name: &str, lang: Lang, kind: Kind) -> anyhow::Result<PathBuf> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        bail!("`{name}` is not a val name: use letters, digits, `-` and `_`");
    }
    let dir = PathBuf::from(name);
    if dir.exists() {
        bail!(
            "{} already exists; pick another name or remove it",
            dir.display()
        );
    }
    let manifest = Manifest {
        name: name.to_string(),
        lang,
        kind,
    };
    let mut files: Vec<(String, String)> = vec![
        (
            MANIFEST.into(),
            serde_json::to_string_pretty(&manifest)? + "\n",
        ),
        ("README.md".into(), templates::readme(name, lang)),
    ];
    match lang {
        Lang::Rust => {
            let sdk = guest_sdk()?;
            files.push(("Cargo.toml".into(), templates::cargo_toml(name, &sdk)));
            files.push((".cargo/config.toml".into(), templates::CARGO_CONFIG.into()));
            files.push(("src/lib.rs".into(), templates::rust_source(name, kind)));
            files.push((".gitignore".into(), "target/\n".into()));
        }
        Lang::Js | Lang::Ts => {
            let (package, lock) = templates::npm_manifests(name);
            files.push(("package.json".into(), package));
            files.push(("package-lock.json".into(), lock));
            files.push(("valbox.js".into(), templates::JS_HELPERS.into()));
            files.push(("valbox.d.ts".into(), templates::JS_TYPES.into()));
            files.push(("build.mjs".into(), templates::JS_BUILD.into()));
            let source = templates::js_source(kind, lang == Lang::Ts);
            files.push((js_entry(lang).into(), source));
            if lang == Lang::Ts {
                files.push(("tsconfig.json".into(), templates::TSCONFIG.into()));
            }
            files.push((".gitignore".into(), "node_modules/\ndist/\n".into()));
            files.extend(wit_files());
        }
        Lang::Python => {
            files.push(("app.py".into(), templates::python_source(kind)));
            files.push(("valbox.py".into(), templates::PY_HELPERS.into()));
            files.push((".gitignore".into(), "dist/\n__pycache__/\n".into()));
            files.extend(wit_files());
        }
    }
    for (path, text) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap_or(&dir))?;
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(dir)
}

fn js_entry(lang: Lang) -> &'static str {
    if lang == Lang::Ts { "val.ts" } else { "val.js" }
}

fn wit_files() -> Vec<(String, String)> {
    templates::WIT
        .iter()
        .map(|(file, text)| (format!("wit/{file}"), text.to_string()))
        .collect()
}

/// The guest SDK a new Rust val depends on: `VALBOX_GUEST_SDK`, else the
/// source tree this binary was built from.
fn guest_sdk() -> anyhow::Result<PathBuf> {
    let path = std::env::var_os("VALBOX_GUEST_SDK")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../guest-sdk"));
    path.join("Cargo.toml")
        .is_file()
        .then(|| path.canonicalize())
        .transpose()?
        .with_context(|| {
            format!(
                "the Rust guest SDK is not at {}; set VALBOX_GUEST_SDK to the guest-sdk \
                 directory of a Valbox source tree",
                path.display()
            )
        })
}

/// How a project is built.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct BuildOptions {
    /// JavaScript and TypeScript: compile the val ahead of time (weval
    /// specialises the engine's interpreter to it), for faster calls and a
    /// bigger component. Needs weval 0.5.0 on PATH or in $WEVAL
    /// (`cargo install weval --version 0.5.0 --locked`).
    #[arg(long)]
    pub aot: bool,
}

/// Build the project in `dir`; returns the component's path.
pub fn build(dir: &Path, options: &BuildOptions) -> anyhow::Result<PathBuf> {
    let dir = &dir
        .canonicalize()
        .with_context(|| format!("no directory {}", dir.display()))?;
    let manifest = read_manifest(dir)?;
    if options.aot && !matches!(manifest.lang, Lang::Js | Lang::Ts) {
        bail!(
            "--aot compiles JavaScript and TypeScript vals ahead of time; {} is a {:?} project",
            dir.display(),
            manifest.lang
        );
    }
    let out = match manifest.lang {
        Lang::Rust => build_rust(dir)?,
        Lang::Js | Lang::Ts => build_js(dir, &manifest, options)?,
        Lang::Python => build_python(dir, &manifest)?,
    };
    if !out.is_file() {
        bail!("the build finished but {} is missing", out.display());
    }
    Ok(out)
}

/// `valbox.json`, or what the files say: Cargo.toml is Rust, package.json
/// JavaScript, app.py Python.
fn read_manifest(dir: &Path) -> anyhow::Result<Manifest> {
    let path = dir.join(MANIFEST);
    if path.is_file() {
        let text = std::fs::read_to_string(&path)?;
        return serde_json::from_str(&text).with_context(|| format!("reading {}", path.display()));
    }
    let name = dir
        .canonicalize()?
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "val".into());
    let lang = if dir.join("Cargo.toml").is_file() {
        Lang::Rust
    } else if dir.join("val.ts").is_file() {
        Lang::Ts
    } else if dir.join("package.json").is_file() {
        Lang::Js
    } else if dir.join("app.py").is_file() {
        Lang::Python
    } else {
        bail!(
            "{} holds no val project (no valbox.json, Cargo.toml, package.json or app.py); \
             start one with `valbox new NAME --lang rust|js|ts|python`",
            dir.display()
        );
    };
    Ok(Manifest {
        name,
        lang,
        kind: Kind::Http,
    })
}

/// Run `command`, failing with what to do when its program is missing.
fn run(mut command: Command, missing: &str) -> anyhow::Result<()> {
    let program = command.get_program().to_string_lossy().into_owned();
    let status = match command.status() {
        Ok(status) => status,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!("`{program}` is not installed: {missing}")
        }
        Err(e) => return Err(e).with_context(|| format!("running {program}")),
    };
    if !status.success() {
        bail!("`{program}` failed ({status}); its output is above");
    }
    Ok(())
}

const TARGET: &str = "wasm32-wasip2";
/// Debian's Rust for the web target (see shared/GUEST-TOOLCHAIN.md):
/// rustc-web, cargo-web, rust-web-src, lld-19 and wasi-libc.
const DEBIAN_RUSTC: &str = "/usr/bin/rustc";
const DEBIAN_CARGO: &str = "/usr/bin/cargo";
const DEBIAN_LLVM_BIN: &str = "/usr/lib/llvm-19/bin";
const DEBIAN_WASI_LIBC: &str = "/usr/lib/wasm32-wasi";

fn build_rust(dir: &Path) -> anyhow::Result<PathBuf> {
    let cargo_toml = std::fs::read_to_string(dir.join("Cargo.toml"))?;
    let package = cargo_toml
        .lines()
        .find_map(|l| l.strip_prefix("name = \""))
        .and_then(|l| l.strip_suffix('"'))
        .context("Cargo.toml names no package")?;
    let mut command;
    if rustup_has_target() {
        command = Command::new("cargo");
        command.args(["build", "--release", "--target", TARGET]);
    } else if Path::new(DEBIAN_WASI_LIBC).join("libc.a").is_file()
        && Path::new(DEBIAN_LLVM_BIN).join("wasm-ld").is_file()
    {
        // No rustup target: Debian's toolchain builds std itself.
        command = Command::new(DEBIAN_CARGO);
        let path = std::env::var("PATH").unwrap_or_default();
        command
            .env("PATH", format!("{DEBIAN_LLVM_BIN}:/usr/bin:{path}"))
            .env("RUSTC", DEBIAN_RUSTC)
            .env("RUSTC_BOOTSTRAP", "1")
            .args(["build", "--release", "--target", TARGET, "--config"])
            .arg(format!(
                "target.{TARGET}.rustflags = ['-L', '{DEBIAN_WASI_LIBC}']"
            ))
            .arg("-Zbuild-std=std,panic_abort");
    } else {
        bail!(
            "no Rust toolchain for {TARGET}: run `rustup target add {TARGET}`, or on Debian \
             install rustc-web cargo-web rust-web-src lld-19 wasi-libc"
        );
    }
    command.current_dir(dir);
    run(command, "install Rust from https://rustup.rs")?;
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| dir.join("target"));
    let lib = package.replace('-', "_");
    Ok(target_dir.join(format!("{TARGET}/release/{lib}.wasm")))
}

fn rustup_has_target() -> bool {
    Command::new("rustc")
        .args(["--print", "target-libdir", "--target", TARGET])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
        .is_some_and(|libdir| libdir.is_dir())
}

fn build_js(dir: &Path, manifest: &Manifest, options: &BuildOptions) -> anyhow::Result<PathBuf> {
    let npm_missing = "install Node.js 20 or later with npm";
    let weval = options.aot.then(find_weval).transpose()?;
    // npm leaves out an optional package it failed to download without
    // failing (componentize-js needs its platform's wizer binary), so the
    // tools are loaded to see they are whole, and installed again if not.
    if !js_tools_load(dir) {
        let mut install = Command::new("npm");
        install
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(dir);
        run(install, npm_missing)?;
        if !js_tools_load(dir) {
            anyhow::bail!(
                "npm ci left componentize-js or esbuild incomplete in {} (an optional \
                 package such as @bytecodealliance/wizer-linux-x64 is missing); \
                 remove node_modules and build again",
                dir.display()
            );
        }
    }
    let out = dir.join(format!("dist/{}.wasm", manifest.name));
    let mut command = Command::new("node");
    command
        .arg("build.mjs")
        .arg(js_entry(manifest.lang))
        .arg(&out)
        .args(["--kind", manifest.kind.as_str(), "--wit", "wit"])
        .current_dir(dir);
    if let Some(weval) = weval {
        command.arg("--weval").arg(weval);
    }
    run(command, npm_missing)?;
    Ok(out)
}

/// The weval binary for `--aot`: `$WEVAL`, or `weval` on PATH, checked to
/// run and be version 0.5 (componentize-js's AOT engine is built for it).
fn find_weval() -> anyhow::Result<PathBuf> {
    const INSTALL: &str = "cargo install weval --version 0.5.0 --locked";
    let path = match std::env::var_os("WEVAL") {
        Some(path) => PathBuf::from(path),
        None => std::env::var_os("PATH")
            .iter()
            .flat_map(std::env::split_paths)
            .map(|dir| dir.join("weval"))
            .find(|candidate| candidate.is_file())
            .with_context(|| format!("--aot needs weval 0.5.0 and none is on PATH: {INSTALL}"))?,
    };
    let output = Command::new(&path)
        .arg("--version")
        .output()
        .with_context(|| format!("running {} --version: {INSTALL}", path.display()))?;
    let version = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() || !version.contains(" 0.5.") {
        bail!(
            "{} is not weval 0.5 (it says {:?}); --aot needs it: {INSTALL}",
            path.display(),
            version.trim()
        );
    }
    // The build runs in the project's directory: a relative path would
    // then name another file.
    Ok(path.canonicalize().unwrap_or(path))
}

/// Whether componentize-js and esbuild load from `dir`'s node_modules.
fn js_tools_load(dir: &Path) -> bool {
    Command::new("node")
        .args(["--input-type=module", "-e"])
        .arg("await import('@bytecodealliance/componentize-js'); await import('esbuild')")
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn build_python(dir: &Path, manifest: &Manifest) -> anyhow::Result<PathBuf> {
    let out = dir.join(format!("dist/{}.wasm", manifest.name));
    std::fs::create_dir_all(dir.join("dist"))?;
    let mut command = Command::new("componentize-py");
    command
        .args(["-d", "wit", "-w"])
        .arg(format!("{}-val", manifest.kind.as_str()))
        .args(["componentize", "app", "-p", ".", "-o"])
        .arg(&out)
        .current_dir(dir);
    run(
        command,
        &format!(
            "python3 -m pip install componentize-py=={}",
            templates::COMPONENTIZE_PY
        ),
    )?;
    Ok(out)
}
