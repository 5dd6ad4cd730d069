//! What the tests that read the real datasets share: the data root found by the library's own
//! rule, with the datasets made present exactly as a notebook makes them.

use std::path::PathBuf;
use std::sync::OnceLock;

/// The data root by the library's rule (`$PLAYGROUND_DATA`, else `data/` at the top of the
/// repository) with MNIST and CIFAR-10 in it: missing files are downloaded from the official
/// mirrors and checked against their SHA-256 first, as a notebook would; offline and missing,
/// the test fails with the library's error, which names each file and the folder to put it in.
/// Once per test binary (the tests of a binary run in parallel threads).
#[allow(dead_code)] // each test binary uses the helpers it needs
pub fn real_data() -> PathBuf {
    static ROOT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let root = ROOT.get_or_init(|| {
        let root = support::env::data_dir();
        support::data::ensure_mnist(&root).map_err(|e| e.to_string())?;
        support::data::ensure_cifar10(&root).map_err(|e| e.to_string())?;
        Ok(root)
    });
    match root {
        Ok(root) => root.clone(),
        Err(e) => panic!("the tests need the real datasets: {e}"),
    }
}

/// The 40 labelled ImageNet validation images and the cat photo: `<data>/imagenet` with `cat.jpg`,
/// `val/` and `val_labels.txt`. Not downloadable (ImageNet needs an account), so a missing
/// folder fails the test with a message that says what to put where.
#[allow(dead_code)]
pub fn imagenet_dir() -> PathBuf {
    let dir = support::env::data_dir().join("imagenet");
    let missing: Vec<&str> = ["cat.jpg", "val", "val_labels.txt"]
        .into_iter()
        .filter(|f| !dir.join(f).exists())
        .collect();
    if !missing.is_empty() {
        panic!(
            "the ImageNet tests need {} in {} (a photo `cat.jpg`, ImageNet validation JPEGs in \
             `val/` and `val_labels.txt` with `file label` lines; see the README's Data section), \
             or set {} to a data folder that has them",
            missing.join(", "),
            dir.display(),
            support::env::DATA_ENV
        );
    }
    dir
}
