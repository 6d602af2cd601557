//! `hdmap segment` on real scans: the PJLab sequence (a 40-beam Hesai sensor, not the simulated
//! one the model was trained on) runs through the shipped model without error; every point gets
//! a class, and a top-down picture per scan is written. Bad inputs are refused by name.

use std::process::Command;

use hdmap_io::testdata::{repo_root, shared_data};

fn hdmap(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hdmap")).args(args).output().expect("run hdmap");
    (
        out.status.success(),
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
    )
}

#[test]
fn pjlab_scans_run_through_the_model() {
    let Some(dir) = shared_data("pjlab_sensorscalib/lidar2imu_seq/top_center_lidar") else { return };
    let out = repo_root().join("target/tmp/segment_pjlab");
    let _ = std::fs::remove_dir_all(&out);
    let model = repo_root().join("datasets/models/dynamic_rangenet.safetensors");
    let (ok, said) = hdmap(&[
        "segment",
        "--model",
        model.to_str().expect("utf-8"),
        "--out",
        out.to_str().expect("utf-8"),
        dir.to_str().expect("utf-8"),
    ]);
    assert!(ok, "hdmap segment failed: {said}");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("segment.json")).expect("segment.json"))
            .expect("json");
    let scans = doc["scans"].as_array().expect("scans");
    assert_eq!(scans.len(), 5, "{doc}");
    for s in scans {
        let scan = std::path::PathBuf::from(s["scan"].as_str().expect("scan"));
        let stem = scan.file_stem().expect("stem").to_string_lossy().to_string();
        let points = s["points"].as_u64().expect("points") as usize;
        // As many classes as the file has points, each a known class code, and the counts add up.
        let pcd = hdmap_io::pcd::read_pcd(&scan).expect("pcd");
        assert_eq!(points, pcd.cloud.len());
        let classes = std::fs::read(out.join(format!("{stem}.classes.u8"))).expect("classes");
        assert_eq!(classes.len(), points);
        assert!(classes.iter().all(|c| *c < 7));
        let total: u64 =
            s["classes"].as_object().expect("counts").values().map(|v| v.as_u64().expect("n")).sum();
        assert_eq!(total as usize, points);
        let png = image::open(out.join(format!("{stem}.png"))).expect("png");
        assert_eq!((png.width(), png.height()), (800, 800));
    }
    eprintln!("{said}\ntop-down pictures: {}", out.display());
}

#[test]
fn bad_segment_inputs_are_named() {
    let out = repo_root().join("target/tmp/segment_bad");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).expect("dir");
    let scan = out.join("cut.pcd");
    std::fs::write(&scan, b"# .PCD v0.7\nVERSION 0.7\nFIELDS x y z\n").expect("write");
    let model = repo_root().join("datasets/models/dynamic_rangenet.safetensors");
    // A truncated scan, then a model without weights or card: each error names its file.
    for (model, named) in [(model, "cut.pcd"), (out.join("none.safetensors"), "none.toml")] {
        let path = |p: &std::path::Path| p.to_str().expect("utf-8").to_string();
        let (ok, said) = hdmap(&["segment", "--model", &path(&model), "--out", &path(&out), &path(&scan)]);
        assert!(!ok && said.contains(named) && !said.contains("panicked"), "{said}");
    }
}
