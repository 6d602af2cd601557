//! `hdmap run`: a clean run of the demo pipeline, a second run that skips every stage, and a
//! run killed with SIGKILL at three moments and resumed — whose stage outputs are
//! byte-identical to the clean run's.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use hdmap_io::testdata::repo_root;
use sha2::{Digest, Sha256};

const STAGES: [&str; 4] = ["sim", "layout", "register", "export"];

/// The demo scenario with a shorter drive (no U-turn, every 4th sweep) so the test stays short.
fn write_scenario(dir: &Path) -> std::path::PathBuf {
    let demo = std::fs::read_to_string(repo_root().join("configs/sim/demo.toml")).expect("demo scenario");
    let short: String = demo
        .lines()
        .map(|l| match l {
            l if l.starts_with("moves =") => "moves = [\"straight\"]",
            l if l.starts_with("keep_every =") => "keep_every = 4",
            l => l,
        })
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(
        short.contains("moves = [\"straight\"]") && short.contains("keep_every = 4"),
        "demo scenario changed"
    );
    let path = dir.join("short_demo.toml");
    std::fs::write(&path, short).expect("scenario");
    path
}

fn write_config(dir: &Path, job: &str) -> std::path::PathBuf {
    let scenario = write_scenario(dir);
    let path = dir.join(format!("{job}.toml"));
    let text = format!(
        "[job]\ndir = \"{job}\"\n\n[inputs]\nsimulate = \"{}\"\nvertical_datum = \"kngeoid18\"\n",
        scenario.display()
    );
    std::fs::write(&path, text).expect("config");
    path
}

fn run(config: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_hdmap")).arg("run").arg(config).output().expect("run hdmap");
    assert!(out.status.success(), "hdmap run failed:\n{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// SHA-256 of every file of the job's stage directories, by relative path.
fn hashes(job: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack: Vec<_> = STAGES.iter().map(|s| job.join(s)).collect();
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(job).expect("inside the job").display().to_string();
                out.insert(rel, format!("{:x}", Sha256::digest(std::fs::read(&p).expect("read"))));
            }
        }
    }
    out
}

#[test]
fn killed_runs_resume_to_the_same_bytes_and_unchanged_stages_are_skipped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clean_cfg = write_config(dir.path(), "clean");
    let said = run(&clean_cfg);
    // Seconds each stage took: "<stage> ran in <s> s ...".
    let seconds = |stage: &str| -> f64 {
        said.lines()
            .find_map(|l| {
                l.strip_prefix(stage)?
                    .trim_start()
                    .strip_prefix("ran in")?
                    .split_whitespace()
                    .next()?
                    .parse()
                    .ok()
            })
            .unwrap_or_else(|| panic!("no time for {stage} in:\n{said}"))
    };
    let clean = hashes(&dir.path().join("clean"));
    assert!(
        clean.keys().any(|k| k.ends_with("lanelet2_map.osm")) && clean.keys().any(|k| k.ends_with(".pcd"))
    );

    // Nothing changed: every stage is skipped.
    let again = run(&clean_cfg);
    assert_eq!(again.matches("up to date").count(), STAGES.len(), "{again}");
    assert_eq!(hashes(&dir.path().join("clean")), clean);

    // SIGKILL halfway through each stage in turn (the moment a stage's partial folder appears,
    // plus half the time that stage took in the clean run), resuming each time.
    let kill_cfg = write_config(dir.path(), "killed");
    let job = dir.path().join("killed");
    for stage in STAGES {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hdmap"))
            .arg("run")
            .arg(&kill_cfg)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn");
        let partial = job.join(format!(".{stage}.partial"));
        let t0 = Instant::now();
        while !partial.exists() {
            assert!(t0.elapsed() < Duration::from_secs(600), "{stage} never started");
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_secs_f64(seconds(stage) / 2.0));
        // Child::kill sends SIGKILL on Unix: no destructor, no cleanup runs.
        let _ = child.kill();
        let _ = child.wait();
        assert!(!job.join(stage).join("manifest.json").exists(), "{stage} finished before the kill");
    }
    let last = run(&kill_cfg);
    eprintln!("clean run:\n{said}resumed run:\n{last}");
    // Each resume finished the stage the previous kill interrupted; the last runs export only.
    assert_eq!(last.matches("up to date").count(), 3, "{last}");
    let killed = hashes(&dir.path().join("killed"));
    let differ: Vec<&String> = clean.keys().filter(|k| clean.get(*k) != killed.get(*k)).collect();
    assert_eq!(clean.len(), killed.len(), "file sets differ");
    assert!(
        differ.is_empty(),
        "{} files differ after resuming, e.g. {:?}",
        differ.len(),
        &differ[..differ.len().min(5)]
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("killed"))
        .expect("job")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "partial stage directories left: {leftovers:?}");
}
