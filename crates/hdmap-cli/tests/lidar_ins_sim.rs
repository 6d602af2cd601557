//! LiDAR–INS extrinsic and LiDAR clock offset from motion, scored against the simulator's true
//! rig: on the demo city drive (planar, GNSS drifting in the canyons: the lever arm must be
//! reported unobservable, not invented) and, end to end through `hdmap calibrate lidar-ins`,
//! on the calibration course (`configs/sim/calib_site.toml`: open sky, rolling ground, a
//! figure eight), where issue 5's targets apply: 0.1°, 2 cm, 1 ms.

use std::process::Command;

use hdmap_core::FrameId;
use hdmap_register::drive::{RegisterConfig, load_drive, match_scans, motion_pairs};

#[test]
fn hand_eye_on_the_demo_drive_beats_the_nominal_rig() {
    let root = hdmap_io::testdata::repo_root();
    let mut sim = hdmap_sim::load_config(&root.join("configs/sim/demo.toml")).expect("demo config");
    sim.camera.rate_hz = 0.0; // no images needed
    let dir = tempfile::tempdir().expect("tempdir");
    hdmap_sim::simulate(&sim, dir.path(), |_, _, _| {}).expect("simulate");
    let layout = hdmap_io::layout::read_layout_geojson(&dir.path().join(hdmap_sim::files::LAYOUT_GEOJSON))
        .expect("layout");
    let cfg = RegisterConfig { overlap_radius_m: 0.1, ..RegisterConfig::default() };
    let drive = load_drive(&dir.path().join("drive"), None, Some(&layout.origin), &cfg).expect("drive");
    let edges = match_scans(&drive, &cfg).expect("scan matching");
    let x_nom = drive.georef.gnss_from_lidar;
    let pairs = motion_pairs(&drive, &edges);
    let r = hdmap_calib::handeye::hand_eye(&pairs, &x_nom).expect("hand-eye");
    let x_true = hdmap_io::rig::read_rig(&dir.path().join(hdmap_sim::files::RIG_TRUE))
        .expect("rig")
        .transform(FrameId::Gnss, FrameId::Lidar(0))
        .expect("gnss_from_lidar");
    let nominal = (x_true.inverse() * x_nom).rotation.angle().to_degrees();
    let ours = (x_true.inverse() * r.body_from_sensor).rotation.angle().to_degrees();
    eprintln!(
        "rotation from the true rig: nominal {nominal:.3}°, hand–eye {ours:.3}°; unobservable {:?}",
        r.unobservable
    );
    // The nominal rig is ~0.8° off; hand–eye must cut that at least threefold (measured 0.09°).
    assert!(nominal > 0.5, "{nominal}");
    assert!(ours < nominal / 3.0, "{ours} vs {nominal}");
    // The drifting INS hides the lever arm on a planar drive: it must be reported, not invented.
    assert!(!r.unobservable.is_empty());
    assert!((r.body_from_sensor.translation.vector - x_nom.translation.vector).norm() < 1e-9);
}

fn hdmap(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hdmap")).args(args).output().expect("run hdmap");
    (
        out.status.success(),
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
    )
}

#[test]
fn calibrate_lidar_ins_on_the_calibration_course_meets_the_targets() {
    let root = hdmap_io::testdata::repo_root();
    let dir = tempfile::tempdir().expect("tempdir");
    let sim_dir = dir.path().join("sim");
    let (ok, log) = hdmap(&[
        "sim",
        "--config",
        &root.join("configs/sim/calib_site.toml").to_string_lossy(),
        "--out",
        &sim_dir.to_string_lossy(),
    ]);
    assert!(ok, "{log}");
    let drive = sim_dir.join("drive");
    let out = dir.path().join("rig.toml");
    let report = dir.path().join("report.json");
    let (ok, log) = hdmap(&[
        "calibrate",
        "lidar-ins",
        "--drive",
        &drive.to_string_lossy(),
        "--out",
        &out.to_string_lossy(),
        "--report",
        &report.to_string_lossy(),
    ]);
    eprintln!("{log}");
    assert!(ok, "{log}");
    let truth = hdmap_io::rig::read_rig(&sim_dir.join(hdmap_sim::files::RIG_TRUE)).expect("true rig");
    let ours = hdmap_io::rig::read_rig(&out).expect("our rig");
    let nominal = hdmap_io::rig::read_rig(&drive.join("rig_nominal.toml")).expect("nominal rig");
    // What motion calibrates is the LiDAR against the INS: gnss_from_lidar.
    let x_true = truth.transform(FrameId::Gnss, FrameId::Lidar(0)).expect("true");
    let x_ours = ours.transform(FrameId::Gnss, FrameId::Lidar(0)).expect("ours");
    let x_nom = nominal.transform(FrameId::Gnss, FrameId::Lidar(0)).expect("nominal");
    let err = |x: &hdmap_core::nalgebra::Isometry3<f64>| {
        let d = x_true.inverse() * x;
        (d.rotation.angle().to_degrees(), (x.translation.vector - x_true.translation.vector).norm())
    };
    let (deg_nom, m_nom) = err(&x_nom);
    let (deg, m) = err(&x_ours);
    let dt_ns = ours.time_offset_ns(FrameId::Lidar(0)) - truth.time_offset_ns(FrameId::Lidar(0));
    eprintln!(
        "gnss_from_lidar vs truth: nominal {deg_nom:.3}° / {:.1} cm, calibrated {deg:.3}° / {:.2} cm; clock offset off by {:.3} ms",
        m_nom * 100.0,
        m * 100.0,
        dt_ns as f64 * 1e-6
    );
    assert!(deg_nom > 0.5 && m_nom > 0.02, "the guess must start off");
    assert!(deg < 0.1, "rotation {deg:.3}°");
    assert!(m < 0.02, "lever arm {:.2} cm", m * 100.0);
    assert!(dt_ns.abs() < 1_000_000, "clock offset off by {dt_ns} ns");
    // The figure eight over rolling ground leaves no lever-arm direction undetermined.
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).expect("report")).expect("json");
    assert_eq!(r["unobservable_gnss_frame"].as_array().map(Vec::len), Some(0), "{r}");
    assert!(ours.extrinsic(FrameId::Vehicle, FrameId::Lidar(0)).and_then(|e| e.covariance).is_some());
    // Bad arguments and a drive without scans are refused, naming the problem.
    let (ok, log) = hdmap(&[
        "calibrate",
        "lidar-ins",
        "--drive",
        &drive.to_string_lossy(),
        "--spans",
        "0",
        "--out",
        &out.to_string_lossy(),
    ]);
    assert!(!ok && log.contains("--spans"), "{log}");
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(empty.join("lidar")).expect("mkdir");
    std::fs::copy(drive.join("ins.csv"), empty.join("ins.csv")).expect("copy");
    std::fs::copy(drive.join("rig_nominal.toml"), empty.join("rig_nominal.toml")).expect("copy");
    let (ok, log) = hdmap(&[
        "calibrate",
        "lidar-ins",
        "--drive",
        &empty.to_string_lossy(),
        "--out",
        &out.to_string_lossy(),
    ]);
    assert!(!ok && log.contains("no .pcd scans"), "{log}");
}
