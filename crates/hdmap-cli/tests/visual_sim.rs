//! Issue 10's visual layer and camera-only localization: the visual layer of the demo world
//! built by `hdmap features visual` from the mapping drive's camera images (noon, 2 Hz) and
//! poses; a held-out drive through the same world — another drive seed (traffic, parked cars,
//! GNSS/INS errors, wander), another speed, and dusk light (darker, a gamma, a quarter of the
//! windows lit) — localized image by image with `hdmap localize --camera`, scored against its
//! ground truth at the kapture/Aachen thresholds. The layer also loads in NAVER LABS' `kapture`
//! package with the content our reader sees.

use std::process::Command;

use hdmap_io::testdata::run_python;

fn hdmap(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hdmap")).args(args).output().expect("run hdmap");
    (
        out.status.success(),
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
    )
}

#[test]
fn a_held_out_drive_at_dusk_localizes_by_camera_against_the_visual_layer() {
    let root = hdmap_io::testdata::repo_root();
    let mut cfg = hdmap_sim::load_config(&root.join("configs/sim/demo.toml")).expect("demo config");
    // The first 40 s of the demo drive: the west road to the junction and the east arm.
    cfg.drive.max_duration_s = 40.0;
    let mut held = cfg.clone();
    cfg.camera.rate_hz = 2.0;
    held.drive.seed = Some(7);
    held.drive.speed_mps = 9.0;
    held.camera.rate_hz = 0.5;
    held.camera.light = 0.5;
    held.camera.gamma = 1.3;
    held.camera.lit_windows = 0.25;
    let dir = tempfile::tempdir().expect("tempdir");
    let (world, heldout) = (dir.path().join("world"), dir.path().join("heldout"));
    hdmap_sim::simulate(&cfg, &world, |_, _, _| {}).expect("simulate the mapping drive");
    hdmap_sim::simulate(&held, &heldout, |_, _, _| {}).expect("simulate the held-out drive");
    let s = |p: &std::path::Path| p.to_str().expect("utf-8 path").to_string();
    // The layer, placed with the mapping drive's true camera poses.
    let vmap = dir.path().join("visual_map");
    let (ok, log) = hdmap(&[
        "features",
        "visual",
        "--drive",
        &s(&world.join("drive")),
        "--poses",
        &s(&world.join(hdmap_sim::files::CAMERA_POSES_TRUE)),
        "--rig",
        &s(&world.join(hdmap_sim::files::RIG_TRUE)),
        "--out",
        &s(&vmap),
    ]);
    assert!(ok, "{log}");
    eprintln!("{log}");
    // NAVER LABS' kapture reads what our reader reads.
    let theirs: serde_json::Value =
        serde_json::from_str(&run_python("kapture_check.py", &[vmap.as_os_str()])).expect("json");
    let ours = hdmap_io::kapture::read_kapture(&vmap).expect("our reader");
    assert_eq!(theirs["points3d"].as_array().expect("points").len(), ours.points3d.len());
    assert!(ours.points3d.len() > 1000, "{} points", ours.points3d.len());
    assert_eq!(theirs["observations"].as_array().expect("observations").len(), ours.observations.len());
    let desc = &theirs["descriptors"][hdmap_features::visual::DESCRIPTOR_TYPE];
    assert_eq!(desc["dsize"], 32);
    assert_eq!(desc["metric_type"], "hamming");
    let d = &ours.descriptors[hdmap_features::visual::DESCRIPTOR_TYPE];
    for (image, f) in desc["files"].as_object().expect("files") {
        assert_eq!(f["count"].as_u64(), Some(d.count(image) as u64), "{image}");
        let first: Vec<f64> =
            f["first"].as_array().expect("first").iter().filter_map(|v| v.as_f64()).collect();
        let mine: Vec<f64> = d.files[image][..32].iter().map(|&b| b as f64).collect();
        assert_eq!(first, mine, "{image}");
    }
    assert_eq!(theirs["records_camera"].as_array().expect("records").len(), ours.records_camera.len());
    // The camera as kapture reads it: OpenCV model with the simulated camera's intrinsics.
    let cam = &theirs["sensors"]["camera0"];
    assert_eq!(cam["model"], "OPENCV");
    let k = cfg.rig.camera;
    let hdmap_core::Distortion::BrownConrady { k1, k2, p1, p2, .. } = k.distortion else { panic!("model") };
    let want = [k.width as f64, k.height as f64, k.fx, k.fy, k.cx, k.cy, k1, k2, p1, p2];
    let got: Vec<f64> = cam["params"].as_array().expect("params").iter().filter_map(|v| v.as_f64()).collect();
    assert_eq!(got, want);
    // Camera-only localization of the held-out drive.
    let out = dir.path().join("loc");
    let (ok, log) = hdmap(&[
        "localize",
        "--camera",
        "--map",
        &s(&vmap),
        "--drive",
        &s(&heldout.join("drive")),
        "--truth",
        &s(&heldout.join(hdmap_sim::files::CAMERA_POSES_TRUE)),
        "--out",
        &s(&out),
    ]);
    assert!(ok, "{log}");
    eprintln!("{log}");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).expect("report")).expect("json");
    let at = |i: usize| report["recall"]["at"][i][2].as_f64().expect("recall");
    let prior = report["prior_recall"]["at"][0][2].as_f64().expect("prior recall");
    // Goal of the issue: ≥ 95 % at (0.25 m, 2°); the GNSS/INS prior alone is far from it.
    assert!(at(0) >= 0.95, "recall at (0.25 m, 2°) {:.3}", at(0));
    assert!(at(1) >= at(0) && at(2) >= at(1));
    assert!(prior < 0.5, "the prior alone reaches {prior:.3}: the check would prove nothing");
    // Every localized pose in the CSV is the report's.
    let csv = hdmap_io::trajectory::read_pose_csv(
        &out.join("localized_camera.csv"),
        hdmap_core::FrameId::World,
        hdmap_core::FrameId::Camera(0),
    )
    .expect("localized poses");
    assert_eq!(csv.poses.len() as u64, report["localized"].as_u64().expect("localized"));
}
