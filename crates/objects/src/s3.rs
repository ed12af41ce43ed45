//! Objects in an S3 bucket (AWS, or any store that speaks its API and
//! honours conditional writes), through the `object_store` crate. Requests
//! are bounded in time and retried briefly, so a store that is down turns
//! into `Unavailable` (a 503) within seconds, not a hung call.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use object_store::aws::{AmazonS3, AmazonS3Builder, S3ConditionalPut};
use object_store::path::Path;
use object_store::{
    BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, PutMode, PutOptions, RetryConfig,
    UpdateVersion,
};

use crate::{
    Condition, Head, Object, ObjectKey, Objects, ObjectsResult, Staged, Unavailable, Written,
};

#[derive(Debug)]
pub struct S3 {
    store: AmazonS3,
    /// The same bucket, for writes: never retried by the client, since a
    /// conditional write retried after it landed would come back as a
    /// conflict. A failed write is reported, and the caller asks the store
    /// what it holds.
    writer: AmazonS3,
    /// Prepended to every key (`s3://bucket/prefix`), without slashes at
    /// either end; empty for the bucket's root.
    prefix: String,
    described: String,
    /// The URL's bucket and parameters, to name other paths in it.
    bucket: String,
    query: String,
}

/// What `s3://…` URLs may say after `?`.
const PARAMETERS: &str = "endpoint, region";

impl S3 {
    /// The bucket `url` names: `s3://BUCKET[/PREFIX]?endpoint=URL&region=R`.
    /// Credentials come from the standard AWS environment variables.
    pub fn open(url: &str) -> anyhow::Result<Self> {
        let parsed = url::Url::parse(url).map_err(|e| {
            anyhow::anyhow!(
                "--objects {url:?} is not a URL ({e}); expected s3://BUCKET?endpoint=…&region=…"
            )
        })?;
        anyhow::ensure!(
            parsed.scheme() == "s3",
            "--objects must be an s3:// URL (s3://BUCKET?endpoint=…&region=…), not {:?}",
            parsed.scheme()
        );
        let bucket = parsed.host_str().filter(|b| !b.is_empty()).ok_or_else(|| {
            anyhow::anyhow!("--objects {url:?} names no bucket: s3://BUCKET?endpoint=…")
        })?;
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .with_conditional_put(S3ConditionalPut::ETagMatch)
            .with_client_options(
                ClientOptions::new()
                    .with_connect_timeout(Duration::from_secs(2))
                    .with_timeout(Duration::from_secs(30)),
            )
            .with_retry(RetryConfig {
                backoff: BackoffConfig {
                    init_backoff: Duration::from_millis(50),
                    max_backoff: Duration::from_secs(1),
                    base: 2.,
                },
                max_retries: 3,
                retry_timeout: Duration::from_secs(5),
            });
        for (name, value) in parsed.query_pairs() {
            builder = match name.as_ref() {
                "endpoint" => builder
                    .with_allow_http(value.starts_with("http://"))
                    .with_endpoint(value.as_ref()),
                "region" => builder.with_region(value.as_ref()),
                other => anyhow::bail!(
                    "--objects: unknown parameter {other:?} (known: {PARAMETERS}); credentials come from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
                ),
            };
        }
        let writer = builder.clone().with_retry(RetryConfig {
            max_retries: 0,
            ..RetryConfig::default()
        });
        Ok(Self {
            writer: writer.build()?,
            store: builder.build()?,
            prefix: parsed.path().trim_matches('/').to_owned(),
            described: format!("s3://{bucket}{}", parsed.path()),
            bucket: bucket.to_owned(),
            query: parsed.query().unwrap_or_default().to_owned(),
        })
    }

    fn path(&self, key: &ObjectKey) -> Path {
        if self.prefix.is_empty() {
            Path::from(key.as_str())
        } else {
            Path::from(format!("{}/{}", self.prefix, key.as_str()))
        }
    }
}

fn unavailable(e: object_store::Error) -> Unavailable {
    Unavailable(e.to_string())
}

/// An ETag without its quotes: versions are shown and compared bare.
fn bare(e_tag: Option<String>) -> ObjectsResult<String> {
    let tag = e_tag.ok_or_else(|| Unavailable("the store gave no ETag".into()))?;
    Ok(tag.trim_matches('"').to_owned())
}

#[async_trait]
impl Objects for S3 {
    async fn get(&self, key: &ObjectKey) -> ObjectsResult<Option<Object>> {
        let got = match self.store.get(&self.path(key)).await {
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            got => got.map_err(unavailable)?,
        };
        let version = bare(got.meta.e_tag.clone())?;
        let bytes = got.bytes().await.map_err(unavailable)?;
        Ok(Some(Object { bytes, version }))
    }

    async fn head(&self, key: &ObjectKey) -> ObjectsResult<Option<Head>> {
        let meta = match self.store.head(&self.path(key)).await {
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            head => head.map_err(unavailable)?,
        };
        Ok(Some(Head {
            size: meta.size,
            version: bare(meta.e_tag)?,
        }))
    }

    async fn stage(&self, key: &ObjectKey, bytes: Bytes) -> ObjectsResult<Box<dyn Staged>> {
        Ok(Box::new(S3Staged {
            store: self.writer.clone(),
            path: self.path(key),
            bytes,
        }))
    }

    async fn delete(&self, key: &ObjectKey) -> ObjectsResult<()> {
        match self.store.delete(&self.path(key)).await {
            Err(object_store::Error::NotFound { .. }) | Ok(()) => Ok(()),
            Err(e) => Err(unavailable(e)),
        }
    }

    fn describe(&self) -> String {
        self.described.clone()
    }

    fn url_of(&self, path: &str) -> String {
        let prefix = match self.prefix.as_str() {
            "" => String::new(),
            prefix => format!("/{prefix}"),
        };
        let query = match self.query.as_str() {
            "" => String::new(),
            query => format!("?{query}"),
        };
        format!("s3://{}{prefix}/{path}{query}", self.bucket)
    }
}

/// S3 has no staging: the bytes are uploaded when published.
struct S3Staged {
    store: AmazonS3,
    path: Path,
    bytes: Bytes,
}

#[async_trait]
impl Staged for S3Staged {
    async fn publish(self: Box<Self>, condition: Condition) -> ObjectsResult<Written> {
        let mode = match condition {
            Condition::Always => PutMode::Overwrite,
            Condition::IfAbsent => PutMode::Create,
            Condition::IfMatch(version) => PutMode::Update(UpdateVersion {
                e_tag: Some(format!("\"{version}\"")),
                version: None,
            }),
        };
        let options = PutOptions {
            mode,
            ..Default::default()
        };
        match self
            .store
            .put_opts(&self.path, self.bytes.into(), options)
            .await
        {
            Ok(put) => Ok(Written::Done(bare(put.e_tag)?)),
            // If-Match over no object is a 404 on S3.
            Err(
                object_store::Error::Precondition { .. }
                | object_store::Error::AlreadyExists { .. }
                | object_store::Error::NotFound { .. },
            ) => {
                let now = match self.store.head(&self.path).await {
                    Err(object_store::Error::NotFound { .. }) => None,
                    head => Some(bare(head.map_err(unavailable)?.e_tag)?),
                };
                Ok(Written::Conflict(now))
            }
            Err(e) => Err(unavailable(e)),
        }
    }
}
