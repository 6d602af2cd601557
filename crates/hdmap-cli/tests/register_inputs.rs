//! `hdmap register` refuses unusable inputs with one line naming the file and the problem.

use std::path::Path;
use std::process::Command;

/// `hdmap register --drive D --layout L --out O [--config C]`: (exit code, stderr).
fn run(drive: &Path, layout: &Path, out: &Path, config: Option<&Path>) -> (Option<i32>, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hdmap"));
    cmd.arg("register").arg("--drive").arg(drive).arg("--layout").arg(layout).arg("--out").arg(out);
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    let out = cmd.output().expect("run hdmap");
    (out.status.code(), String::from_utf8_lossy(&out.stderr).to_string())
}

fn one_line_naming(code: Option<i32>, stderr: &str, name: &str, words: &str) {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(code, Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].contains(name), "does not name {name}: {}", lines[0]);
    assert!(lines[0].to_lowercase().contains(words), "does not say `{words}`: {}", lines[0]);
}

#[test]
fn bad_register_inputs_fail_cleanly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let out = d.join("out");
    // A layout of an unknown kind.
    let bad_layout = d.join("layout.txt");
    std::fs::write(&bad_layout, "x").expect("write");
    let drive = d.join("drive");
    std::fs::create_dir_all(drive.join("lidar")).expect("mkdir");
    let (c, e) = run(&drive, &bad_layout, &out, None);
    one_line_naming(c, &e, "layout.txt", "gpkg");
    // A real layout, but a drive without an INS file.
    let layout_arg = d.join("layout.geojson");
    let origin =
        hdmap_core::GeoOrigin::new(5186, [0.0; 3], hdmap_core::VerticalDatum::Kngeoid18).expect("origin");
    hdmap_io::layout::write_layout_geojson(&layout_arg, &hdmap_core::RoadLayout::new(origin))
        .expect("layout");
    let (c, e) = run(&drive, &layout_arg, &out, None);
    one_line_naming(c, &e, "ins.csv", "");
    // An INS file with a NaN.
    let corpus = hdmap_io::testdata::repo_root().join("tests/corpus/nan_in_ins.csv");
    std::fs::copy(&corpus, drive.join("ins.csv")).expect("copy");
    let (c, e) = run(&drive, &layout_arg, &out, None);
    one_line_naming(c, &e, "ins.csv", "not a finite number");
    assert!(!d.join("out").exists(), "nothing written on failure");
}

#[test]
fn bad_register_settings_fail_naming_the_file_and_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    for (name, text, words) in [
        ("unknown.toml", "voxel_size_m = 0.3\nbogus = 1\n", "bogus"),
        ("gates.toml", "paint_gates_m = []\n", "paint_gates_m"),
        ("nested.toml", "[gicp]\nmax_correspondence_m = -1\n", "gicp.max_correspondence_m"),
    ] {
        let cfg = d.join(name);
        std::fs::write(&cfg, text).expect("write");
        let (c, e) = run(Path::new("nowhere"), Path::new("nowhere.gpkg"), &d.join("out"), Some(&cfg));
        assert_eq!(c, Some(1), "{e}");
        assert!(!e.contains("panicked"), "{e}");
        assert!(e.contains(name) && e.contains(words), "{name}: {e}");
    }
    // The defaults print as a config that reads back.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hdmap"))
        .args(["register", "--drive", "x", "--layout", "y.gpkg", "--out", "z", "--print-config"])
        .output()
        .expect("run");
    let printed = d.join("printed.toml");
    std::fs::write(&printed, &out.stdout).expect("write");
    let (c, e) = run(&d.join("missing"), Path::new("nowhere.gpkg"), &d.join("out"), Some(&printed));
    assert_eq!(c, Some(1));
    assert!(e.contains("nowhere.gpkg"), "the printed defaults are accepted, the missing layout is not: {e}");
}
