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
