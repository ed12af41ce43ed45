//! Objects as files under one directory, reached only through a cap-std
//! handle on it. A write is a temporary file, synced, renamed into place,
//! and the directory synced, so an acknowledged write survives a crash.
//! A version is a hash of the content. Conditions are checked against the
//! file as it is, under a lock on the key's stripe held until the rename.

use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use bytes::Bytes;
use cap_std::ambient_authority;
use cap_std::fs::{Dir, OpenOptions};

use crate::{
    Condition, Head, Object, ObjectKey, Objects, ObjectsResult, Staged, Unavailable, Written,
    content_version,
};

#[derive(Debug)]
pub struct Files {
    root: PathBuf,
    publishing: Arc<Stripes>,
}

/// One lock per stripe of keys, held from checking a write's condition
/// to renaming its file into place, so that of two conditional writes
/// over one version only one lands. (The files are one machine's, so an
/// in-process lock covers every writer.)
#[derive(Debug)]
struct Stripes([Mutex<()>; 64]);

impl Stripes {
    fn lock(&self, key: &str) -> MutexGuard<'_, ()> {
        let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(key);
        let stripe = &self.0[hash as usize % self.0.len()];
        stripe
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Files {
    /// The store in `root`, made if missing.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            publishing: Arc::new(Stripes(std::array::from_fn(|_| Mutex::new(())))),
        }
    }

    fn dir(&self) -> std::io::Result<Dir> {
        std::fs::create_dir_all(&self.root)?;
        Dir::open_ambient_dir(&self.root, ambient_authority())
    }
}

/// The parent directory of `key` and the object's name in it.
fn split(key: &ObjectKey) -> (&Path, &str) {
    let path = key.as_str();
    let (parent, name) = path.rsplit_once('/').unwrap_or(("", path));
    (Path::new(parent), name)
}

/// The file's bytes and version, if it exists.
fn read(root: &Dir, key: &ObjectKey) -> std::io::Result<Option<Object>> {
    match root.read(key.as_str()) {
        Ok(bytes) => Ok(Some(Object {
            version: content_version(&bytes),
            bytes: bytes.into(),
        })),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

async fn blocking<R: Send + 'static>(
    op: impl FnOnce() -> std::io::Result<R> + Send + 'static,
) -> ObjectsResult<R> {
    tokio::task::spawn_blocking(op)
        .await
        .map_err(|e| Unavailable(e.to_string()))?
        .map_err(|e| Unavailable(format!("file store: {e}")))
}

#[async_trait]
impl Objects for Files {
    async fn get(&self, key: &ObjectKey) -> ObjectsResult<Option<Object>> {
        let (root, key) = (self.dir(), key.clone());
        blocking(move || read(&root?, &key)).await
    }

    async fn head(&self, key: &ObjectKey) -> ObjectsResult<Option<Head>> {
        // The version is a hash of the content: the bytes must be read.
        Ok(self.get(key).await?.map(|o| Head {
            size: o.bytes.len() as u64,
            version: o.version,
        }))
    }

    async fn stage(&self, key: &ObjectKey, bytes: Bytes) -> ObjectsResult<Box<dyn Staged>> {
        let (root, key, publishing) = (self.dir(), key.clone(), self.publishing.clone());
        let staged = blocking(move || {
            let (parent, name) = split(&key);
            let root = root?;
            root.create_dir_all(parent)?;
            let dir = root.open_dir(parent)?;
            let tmp = format!(".tmp-{name}-{}", uuid::Uuid::new_v4().simple());
            let mut file = dir.open_with(&tmp, OpenOptions::new().write(true).create_new(true))?;
            let staged = FileStaged {
                publishing,
                key: key.as_str().to_owned(),
                dir,
                tmp: Some(tmp),
                name: name.to_owned(),
                version: content_version(&bytes),
            };
            file.write_all(&bytes)?;
            file.sync_all()?;
            Ok(staged)
        })
        .await?;
        Ok(Box::new(staged))
    }

    async fn delete(&self, key: &ObjectKey) -> ObjectsResult<()> {
        let (root, key, publishing) = (self.dir(), key.clone(), self.publishing.clone());
        blocking(move || {
            // Not between a conditional write's check and its rename.
            let _key = publishing.lock(key.as_str());
            match root?.remove_file(key.as_str()) {
                Err(e) if e.kind() != ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            }
        })
        .await
    }

    fn describe(&self) -> String {
        format!("files in {}", self.root.display())
    }

    fn url_of(&self, path: &str) -> String {
        format!("file://{}/{path}", self.root.display())
    }
}

/// Bytes written and synced beside the object, not yet in place; removed
/// when dropped unpublished.
struct FileStaged {
    publishing: Arc<Stripes>,
    key: String,
    dir: Dir,
    tmp: Option<String>,
    name: String,
    version: String,
}

impl Drop for FileStaged {
    fn drop(&mut self) {
        if let Some(tmp) = self.tmp.take() {
            let _ = self.dir.remove_file(tmp);
        }
    }
}

impl FileStaged {
    fn current(&self) -> std::io::Result<Option<String>> {
        match self.dir.read(&self.name) {
            Ok(bytes) => Ok(Some(content_version(&bytes))),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn publish_now(mut self, condition: Condition) -> std::io::Result<Written> {
        let publishing = self.publishing.clone();
        let _key = publishing.lock(&self.key);
        let conflict = match &condition {
            Condition::Always => None,
            Condition::IfAbsent => Some(self.current()?).filter(Option::is_some),
            Condition::IfMatch(v) => Some(self.current()?).filter(|now| now.as_ref() != Some(v)),
        };
        if let Some(now) = conflict {
            return Ok(Written::Conflict(now));
        }
        let tmp = self.tmp.take().expect("staged until published");
        if let Err(e) = self.dir.rename(&tmp, &self.dir, &self.name) {
            let _ = self.dir.remove_file(&tmp);
            return Err(e);
        }
        // The rename survives a crash once the directory is synced.
        self.dir.open(".")?.sync_all()?;
        Ok(Written::Done(self.version.clone()))
    }
}

#[async_trait]
impl Staged for FileStaged {
    async fn publish(self: Box<Self>, condition: Condition) -> ObjectsResult<Written> {
        blocking(move || self.publish_now(condition)).await
    }
}
