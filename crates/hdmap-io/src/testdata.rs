//! Locations of test inputs shared by the test suites of every crate: the real third-party
//! data in `../shared/data` and the Python validators installed by `tools/setup`.
//!
//! `HDMAP_SHARED_DATA` overrides the data folder, `HDMAP_PYTHON` the interpreter. When the
//! data folder is absent, [`shared_data`] returns `None` so tests can skip with a message —
//! unless `HDMAP_REQUIRE_DATA=1` (set by `tools/test`, hence by CI), which turns a missing
//! folder into a failure.

use std::path::{Path, PathBuf};

/// The repository root (two levels above this crate).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap_or_else(|_| PathBuf::from("."))
}

/// `../shared/data/<rel>` (or `$HDMAP_SHARED_DATA/<rel>`), `None` when absent and not required.
///
/// # Panics
/// When the folder is missing and `HDMAP_REQUIRE_DATA=1`: a test run that must use real data
/// fails loudly instead of skipping.
pub fn shared_data(rel: &str) -> Option<PathBuf> {
    let base = std::env::var_os("HDMAP_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("../shared/data"));
    let p = base.join(rel);
    if p.exists() {
        return Some(p);
    }
    if std::env::var("HDMAP_REQUIRE_DATA").is_ok_and(|v| v == "1") {
        panic!("required test data missing: {} (HDMAP_REQUIRE_DATA=1)", p.display());
    }
    eprintln!("skipping: test data {} not found", p.display());
    None
}

/// The Python interpreter with the validators of `tools/requirements-test.txt`.
///
/// # Panics
/// When it is missing: run `tools/setup` first (the README's test command does).
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("HDMAP_PYTHON") {
        return PathBuf::from(p);
    }
    let p = repo_root().join(".cache/venv/bin/python");
    assert!(p.exists(), "{} missing: run tools/setup (the README's test command does)", p.display());
    p
}

/// Runs `python <script> <args...>` from `tools/py/` and returns its stdout.
///
/// # Panics
/// When the script fails (its stderr is shown).
pub fn run_python(script: &str, args: &[&std::ffi::OsStr]) -> String {
    let script = repo_root().join("tools/py").join(script);
    let out = std::process::Command::new(python())
        .arg(&script)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(out.status.success(), "{} failed:\n{}", script.display(), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).to_string()
}
