//! Download with checksum verification and atomic rename, against a one-shot HTTP server on
//! loopback that the test runs itself.
#![cfg(feature = "download")]

use std::io::{Read, Write};
use std::net::TcpListener;
use support::data::fetch::fetch_verified;

/// Serves `body` to `n` requests on 127.0.0.1 and returns the URL.
fn serve(body: &'static [u8], n: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(n) {
            let mut s = stream.unwrap();
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(body);
        }
    });
    format!("http://127.0.0.1:{port}/file.gz")
}

const ABC_SHA: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

#[test]
fn verified_download_lands_under_its_final_name() {
    let dir = std::env::temp_dir().join(format!("support-dl-ok-{}", std::process::id()));
    let dest = dir.join("f.gz");
    fetch_verified(&[&serve(b"abc", 1)], ABC_SHA, &dest).unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), b"abc");
    assert!(!dir.join("f.gz.part").exists());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn checksum_mismatch_leaves_nothing_and_falls_back_to_the_next_mirror() {
    let dir = std::env::temp_dir().join(format!("support-dl-bad-{}", std::process::id()));
    let dest = dir.join("f.gz");
    let err = fetch_verified(&[&serve(b"tampered", 1)], ABC_SHA, &dest).unwrap_err().to_string();
    assert!(err.contains("checksum mismatch"), "{err}");
    assert!(!dest.exists() && !dir.join("f.gz.part").exists());
    fetch_verified(&[&serve(b"tampered", 1), &serve(b"abc", 1)], ABC_SHA, &dest).unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), b"abc");
    std::fs::remove_dir_all(dir).unwrap();
}
