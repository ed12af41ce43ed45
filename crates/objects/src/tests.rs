use crate::{Files, Objects, conformance};

#[tokio::test]
async fn files_pass_the_conformance_checks() {
    let dir = tempfile::tempdir().unwrap();
    let files = Files::new(dir.path());
    conformance::all(&files).await;
    // Nothing is left beside the objects: no temporary files.
    let blobs = dir.path().join("blobs/conformance");
    let left: Vec<_> = std::fs::read_dir(blobs).unwrap().collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    assert!(files.describe().contains("files in"));
}

#[cfg(feature = "s3")]
#[test]
fn another_program_is_given_the_same_bucket_endpoint_and_region() {
    let url = "s3://bkt/team/a?endpoint=http://127.0.0.1:9000&region=eu-west-1";
    let s3 = crate::s3::S3::open(url).unwrap();
    assert_eq!(
        s3.url_of("sqlite/u/3"),
        "s3://bkt/team/a/sqlite/u/3?endpoint=http://127.0.0.1:9000&region=eu-west-1"
    );
    let bare = crate::s3::S3::open("s3://bkt").unwrap();
    assert_eq!(bare.url_of("sqlite/u/3"), "s3://bkt/sqlite/u/3");
}
