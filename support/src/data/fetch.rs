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

#[cfg(feature = "download")]
fn agent() -> ureq::Agent {
    let mut config = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(15)))
        .timeout_global(Some(Duration::from_secs(1800)));
    if let Some(roots) = system_roots() {
        config = config.tls_config(ureq::tls::TlsConfig::builder().root_certs(roots).build());
    }
    ureq::Agent::new_with_config(config.build())
}

#[cfg(feature = "download")]
fn part_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    dest.with_file_name(name)
}

#[cfg(feature = "download")]
fn download_to(url: &str, path: &Path) -> Result<()> {
    println!("downloading {url}");
    let resp = agent().get(url).call().map_err(|e| error(format!("{url}: {e}")))?;
    let mut reader = resp.into_body().into_reader();
    let mut file = std::fs::File::create(path)
        .map_err(|e| error(format!("cannot write {}: {e}", path.display())))?;
    std::io::copy(&mut reader, &mut file)
        .map_err(|e| error(format!("{url}: download interrupted: {e}")))?;
    Ok(())
}

/// Downloads `dest` from the first of `urls` that serves a file whose SHA-256 is `sha256`.
#[cfg(feature = "download")]
pub fn fetch_verified(urls: &[&str], sha256: &str, dest: &Path) -> Result<()> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .map_err(|e| error(format!("cannot create {}: {e}", dir.display())))?;
    let part = part_path(dest);
    let mut errors = Vec::new();
    for url in urls {
        match download_to(url, &part).and_then(|()| sha256_file(&part)) {
            Ok(got) if got == sha256 => {
                std::fs::rename(&part, dest)
                    .map_err(|e| error(format!("cannot rename {}: {e}", part.display())))?;
                return Ok(());
            }
            Ok(got) => {
                errors.push(format!("{url}: checksum mismatch (SHA-256 {got}, expected {sha256})"))
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    let _ = std::fs::remove_file(&part);
    Err(error(errors.join("; ")))
}

/// Downloads the `.tar.gz` at `url` and extracts `files` (name, SHA-256) into `dir`, each
/// checked before it is renamed into place (the CIFAR-10 binary tarball).
#[cfg(feature = "download")]
pub(crate) fn fetch_tar_members(url: &str, dir: &Path, files: &[(&str, &str)]) -> Result<()> {
    std::fs::create_dir_all(dir)
        .map_err(|e| error(format!("cannot create {}: {e}", dir.display())))?;
    let tarball = dir.join(format!("{}.part", url.rsplit('/').next().unwrap_or("download")));
    download_to(url, &tarball)?;
    let result = (|| {
        let gz = std::fs::File::open(&tarball)
            .map_err(|e| error(format!("cannot read {}: {e}", tarball.display())))?;
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
            let part = part_path(&dest);
            let mut buf = Vec::new();
            entry
                .read_to_end(&mut buf)
                .map_err(|e| error(format!("{url}: corrupt archive: {e}")))?;
            std::fs::write(&part, &buf)
                .map_err(|e| error(format!("cannot write {}: {e}", part.display())))?;
            let got = sha256_file(&part)?;
            if got != *sha {
                let _ = std::fs::remove_file(&part);
                return Err(error(format!(
                    "{name} from {url}: checksum mismatch (SHA-256 {got}, expected {sha})"
                )));
            }
            std::fs::rename(&part, &dest)
                .map_err(|e| error(format!("cannot rename {}: {e}", part.display())))?;
            done.push(name);
        }
        let absent: Vec<&str> =
            files.iter().map(|f| f.0).filter(|n| !done.iter().any(|d| d == n)).collect();
        if absent.is_empty() {
            Ok(())
        } else {
            Err(error(format!("{url}: archive lacks {}", absent.join(", "))))
        }
    })();
    let _ = std::fs::remove_file(&tarball);
    result
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
    let part = dest.with_extension("part");
    let mut out = std::fs::File::create(&part)
        .map_err(|e| error(format!("cannot write {}: {e}", part.display())))?;
    std::io::copy(&mut entry, &mut out)
        .map_err(|e| error(format!("unpacking {member} failed: {e}")))?;
    std::fs::rename(&part, dest)
        .map_err(|e| error(format!("cannot rename {}: {e}", part.display())))
}
