//! Fetching files from their official mirrors: every file is streamed into `<name>.part` next
//! to its destination, checked against its SHA-256, and only then renamed into place, so an
//! interrupted or tampered download never leaves a file that looks complete. The HTTP client
//! is behind the `download` feature (on by default); [`crate::env::downloads_enabled`] also
//! honours `PLAYGROUND_OFFLINE`.

use crate::env::{DATA_ENV, OFFLINE_ENV};
use crate::{error, Result};
use std::io::Read;
use std::path::Path;
#[cfg(feature = "download")]
use std::path::PathBuf;
#[cfg(feature = "download")]
use std::time::Duration;

/// A file of a dataset: its name, its SHA-256, and the URLs that serve it (tried in order).
pub struct RemoteFile {
    /// The file name, as the dataset publishes it.
    pub name: &'static str,
    /// Its SHA-256, lowercase hex.
    pub sha256: &'static str,
    /// Mirrors that serve it, tried in order.
    pub urls: &'static [&'static str],
}

/// The bytes of a dataset file, or an error that names it and says what to do (a folder where
/// the file should be, a file that cannot be read).
pub(crate) fn read_data_file(path: &Path) -> Result<Vec<u8>> {
    if path.is_dir() {
        return Err(error(format!(
            "{} is a folder where a data file should be: remove it and put the file there (or \
             remove it and let the file be downloaded)",
            path.display()
        )));
    }
    std::fs::read(path)
        .map_err(|e| error(format!("cannot read {}: {e}; replace it", path.display())))
}

/// Lowercase hex SHA-256 of a file.
pub fn sha256_file(path: &Path) -> Result<String> {
    use sha2::{Digest, Sha256};
    let mut f = std::fs::File::open(path)
        .map_err(|e| error(format!("cannot open {}: {e}", path.display())))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n =
            f.read(&mut buf).map_err(|e| error(format!("cannot read {}: {e}", path.display())))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// The error for files of a dataset that are missing from `dir`: which, where, whether a
/// download was tried (and how it failed), and what to do.
pub(crate) fn missing_files_error(
    what: &str,
    dir: &Path,
    missing: &[&str],
    failures: &[String],
) -> crate::Error {
    let mut msg =
        format!("{what} data is missing: {} not found in {}.\n", missing.join(", "), dir.display());
    if failures.is_empty() {
        msg += &format!(
            "Downloads are off (the `download` feature is missing or {OFFLINE_ENV} is set), \
             so nothing was fetched.\n"
        );
    } else {
        msg += "Downloading them failed:\n";
        for f in failures {
            msg += &format!("  - {f}\n");
        }
    }
    msg += &format!(
        "Put the files in that folder (or set {DATA_ENV} to a folder that has a `{}` subfolder \
         with them) and run again.",
        dir.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
    );
    error(msg)
}

/// The system's CA bundle (`$SSL_CERT_FILE`, else the usual Linux locations), so downloads work
/// behind a TLS-inspecting proxy whose CA the system trusts; `None` falls back to the Mozilla
/// roots built into ureq.
#[cfg(feature = "download")]
fn system_roots() -> Option<ureq::tls::RootCerts> {
    let candidates = std::env::var_os("SSL_CERT_FILE").map(PathBuf::from).into_iter().chain(
        [
            "/etc/ssl/certs/ca-certificates.crt",
            "/etc/pki/tls/certs/ca-bundle.crt",
            "/etc/ssl/cert.pem",
        ]
        .iter()
        .map(PathBuf::from),
    );
    for path in candidates {
        let Ok(pem) = std::fs::read(&path) else { continue };
        let certs: Vec<ureq::tls::Certificate<'static>> = ureq::tls::parse_pem(&pem)
            .filter_map(|item| match item {
                Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                _ => None,
            })
            .collect();
        if !certs.is_empty() {
            return Some(ureq::tls::RootCerts::new_with_certs(&certs));
        }
    }
    None
}

/// How long a download may receive no bytes before the attempt ends (seconds).
#[cfg(feature = "download")]
static READ_TIMEOUT_SECS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(60);

/// Sets how long a download may stall (no bytes received) before it fails: 60 s by default.
/// For tests of the stalled-server path.
#[doc(hidden)]
#[cfg(feature = "download")]
pub fn set_read_timeout(timeout: Duration) {
    READ_TIMEOUT_SECS.store(timeout.as_secs().max(1), std::sync::atomic::Ordering::Relaxed);
}

#[cfg(feature = "download")]
fn agent() -> ureq::Agent {
    let stall = READ_TIMEOUT_SECS.load(std::sync::atomic::Ordering::Relaxed);
    let mut config = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(15)))
        .timeout_per_read(Some(Duration::from_secs(stall)));
    if let Some(roots) = system_roots() {
        config = config.tls_config(ureq::tls::TlsConfig::builder().root_certs(roots).build());
    }
    ureq::Agent::new_with_config(config.build())
}

/// `<dest>.part`: where a file is written until it has been checked.
#[cfg(feature = "download")]
fn part_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    dest.with_file_name(name)
}

/// A `.part` file that is removed when it goes out of scope, unless it was renamed into place
/// ([`Part::commit`]): no failure path leaves one behind.
#[cfg(feature = "download")]
struct Part {
    path: PathBuf,
    done: bool,
}

#[cfg(feature = "download")]
impl Part {
    fn new(path: PathBuf) -> Self {
        Part { path, done: false }
    }

    /// Renames the checked file into place.
    fn commit(mut self, dest: &Path) -> Result<()> {
        std::fs::rename(&self.path, dest)
            .map_err(|e| error(format!("cannot rename {}: {e}", self.path.display())))?;
        self.done = true;
        Ok(())
    }
}

#[cfg(feature = "download")]
impl Drop for Part {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Streams `url` into `path`, printing a progress line (MB, percent, time left) about every
/// 10% when the size is known.
#[cfg(feature = "download")]
fn download_to(url: &str, path: &Path) -> Result<()> {
    println!("downloading {url}");
    let resp = agent().get(url).call().map_err(|e| error(format!("{url}: {e}")))?;
    let total = resp.body().content_length();
    let mut reader = resp.into_body().into_reader();
    let mut file = std::fs::File::create(path)
        .map_err(|e| error(format!("cannot write {}: {e}", path.display())))?;
    let (start, mut done, mut next) = (std::time::Instant::now(), 0u64, 0.1f64);
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let stall = READ_TIMEOUT_SECS.load(std::sync::atomic::Ordering::Relaxed);
                return Err(error(format!(
                    "{url}: download interrupted after {:.1} MB ({e}; a server that sends \
                     nothing for {stall} s is given up on)",
                    done as f64 / 1e6
                )));
            }
        };
        std::io::Write::write_all(&mut file, &buf[..n])
            .map_err(|e| error(format!("cannot write {}: {e}", path.display())))?;
        done += n as u64;
        if let Some(total) = total.filter(|&t| t > 0) {
            let frac = done as f64 / total as f64;
            if frac >= next && done < total {
                let secs = start.elapsed().as_secs_f64();
                println!(
                    "  {:.1} / {:.1} MB ({:.0}%), ~{:.0} s left",
                    done as f64 / 1e6,
                    total as f64 / 1e6,
                    frac * 100.0,
                    secs / frac - secs
                );
                next = (frac * 10.0).floor() / 10.0 + 0.1;
            }
        }
    }
    if let Some(total) = total.filter(|&t| done < t) {
        return Err(error(format!("{url}: the server sent {done} of {total} bytes")));
    }
    Ok(())
}

/// Downloads `dest` from the first of `urls` that serves a file whose SHA-256 is `sha256`,
/// through `<dest>.part`, which no failure leaves behind.
#[cfg(feature = "download")]
pub fn fetch_verified(urls: &[&str], sha256: &str, dest: &Path) -> Result<()> {
    fetch_checked(urls, dest, sha256, |got| got == sha256)
}

/// Downloads `dest` from the first of `urls` that serves a file whose SHA-256 starts with
/// `prefix`, as `torch.hub` checks the checkpoints whose names carry that prefix
/// (`resnet18-f37072fd.pth`), through `<dest>.part`, which no failure leaves behind.
#[cfg(feature = "download")]
pub fn fetch_hash_prefix(urls: &[&str], prefix: &str, dest: &Path) -> Result<()> {
    if prefix.len() < 8 || !prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(error(format!(
            "`{prefix}` is not a SHA-256 prefix (8 or more hex digits) to check {} against",
            dest.display()
        )));
    }
    let prefix = prefix.to_ascii_lowercase();
    let expected = format!("{prefix}...");
    fetch_checked(urls, dest, &expected, |got| got.starts_with(&prefix))
}

#[cfg(feature = "download")]
fn fetch_checked(
    urls: &[&str],
    dest: &Path,
    expected: &str,
    accept: impl Fn(&str) -> bool,
) -> Result<()> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .map_err(|e| error(format!("cannot create {}: {e}", dir.display())))?;
    let mut errors = Vec::new();
    for url in urls {
        let part = Part::new(part_path(dest));
        match download_to(url, &part.path).and_then(|()| sha256_file(&part.path)) {
            Ok(got) if accept(&got) => return part.commit(dest),
            Ok(got) => errors
                .push(format!("{url}: checksum mismatch (SHA-256 {got}, expected {expected})")),
            Err(e) => errors.push(e.to_string()),
        }
    }
    Err(error(errors.join("; ")))
}

/// Downloads the `.tar.gz` at `url` and extracts `files` (name, SHA-256) into `dir`, each
/// checked before it is renamed into place (the CIFAR-10 binary tarball).
#[cfg(feature = "download")]
pub(crate) fn fetch_tar_members(url: &str, dir: &Path, files: &[(&str, &str)]) -> Result<()> {
    std::fs::create_dir_all(dir)
        .map_err(|e| error(format!("cannot create {}: {e}", dir.display())))?;
    let tarball =
        Part::new(dir.join(format!("{}.part", url.rsplit('/').next().unwrap_or("download"))));
    download_to(url, &tarball.path)?;
    {
        let gz = std::fs::File::open(&tarball.path)
            .map_err(|e| error(format!("cannot read {}: {e}", tarball.path.display())))?;
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(gz));
        let mut done = Vec::new();
        for entry in
            archive.entries().map_err(|e| error(format!("{url}: not a tar.gz archive: {e}")))?
        {
            let mut entry = entry.map_err(|e| error(format!("{url}: corrupt archive: {e}")))?;
            let path = entry
                .path()
                .map_err(|e| error(format!("{url}: corrupt archive: {e}")))?
                .into_owned();
            let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
                continue;
            };
            let Some((_, sha)) = files.iter().find(|(n, _)| *n == name) else { continue };
            let dest = dir.join(&name);
            let part = Part::new(part_path(&dest));
            let mut out = std::fs::File::create(&part.path)
                .map_err(|e| error(format!("cannot write {}: {e}", part.path.display())))?;
            std::io::copy(&mut entry, &mut out)
                .map_err(|e| error(format!("{url}: corrupt archive ({e}) at {name}")))?;
            let got = sha256_file(&part.path)?;
            if got != *sha {
                return Err(error(format!(
                    "{name} from {url}: checksum mismatch (SHA-256 {got}, expected {sha})"
                )));
            }
            part.commit(&dest)?;
            done.push(name);
        }
        let absent: Vec<&str> =
            files.iter().map(|f| f.0).filter(|n| !done.iter().any(|d| d == n)).collect();
        if absent.is_empty() {
            Ok(())
        } else {
            Err(error(format!("{url}: archive lacks {}", absent.join(", "))))
        }
    }
}

/// Extracts the zip entry whose name ends with `/member` into `dest` (via a `.part` file).
#[cfg(feature = "download")]
pub(crate) fn unpack_zip_member(archive: &Path, member: &str, dest: &Path) -> Result<()> {
    let file = std::fs::File::open(archive)
        .map_err(|e| error(format!("cannot open {}: {e}", archive.display())))?;
    let mut zip = zip::ZipArchive::new(std::io::BufReader::new(file))
        .map_err(|e| error(format!("{} is not a zip archive: {e}", archive.display())))?;
    let name = zip
        .file_names()
        .filter_map(|n| n.ok())
        .find(|n| n.ends_with(&format!("/{member}")))
        .map(|n| n.to_string())
        .ok_or_else(|| error(format!("{} holds no {member}", archive.display())))?;
    let mut entry = zip.by_name(&name).map_err(|e| error(format!("{}: {e}", archive.display())))?;
    let part = Part::new(part_path(dest));
    let mut out = std::fs::File::create(&part.path)
        .map_err(|e| error(format!("cannot write {}: {e}", part.path.display())))?;
    std::io::copy(&mut entry, &mut out)
        .map_err(|e| error(format!("unpacking {member} failed: {e}")))?;
    part.commit(dest)
}
