//! The simulated demo drive (GNSS drifting by metres in the street canyon) registered onto
//! the simulator's truth layout: the ablation GNSS only / + scan matching / + layout, scored
//! by absolute trajectory error against the true LiDAR poses (the target: ≤ 10 cm
//! RMSE after anchoring, marking points on the layout's paint).

use hdmap_core::FrameId;
use hdmap_register::drive::{Constraints, RegisterConfig, ate, load_drive, match_scans, register};

#[test]
fn demo_drive_ablation_against_true_poses() {
    let root = hdmap_io::testdata::repo_root();
    let mut sim = hdmap_sim::load_config(&root.join("configs/sim/demo.toml")).expect("demo config");
    sim.camera.rate_hz = 0.0; // no images needed
    let dir = tempfile::tempdir().expect("tempdir");
    hdmap_sim::simulate(&sim, dir.path(), |_, _, _| {}).expect("simulate");
    let layout = hdmap_io::layout::read_layout_geojson(&dir.path().join(hdmap_sim::files::LAYOUT_GEOJSON))
        .expect("layout");
    let truth = hdmap_io::trajectory::read_pose_csv(
        &dir.path().join(hdmap_sim::files::SCAN_POSES_TRUE),
        FrameId::World,
        FrameId::Lidar(0),
    )
    .expect("truth");
    // Truth is in true time; LiDAR stamps carry the LiDAR clock offset of the true rig.
    let off = hdmap_io::rig::read_rig(&dir.path().join(hdmap_sim::files::RIG_TRUE))
        .expect("rig")
        .time_offset_ns(FrameId::Lidar(0));
    let cfg = RegisterConfig::default();
    let drive = load_drive(&dir.path().join("drive"), None, Some(&layout.origin), &cfg).expect("load drive");
    let edges = match_scans(&drive, &cfg).expect("scan matching");
    assert!(
        edges.len() + 5 >= drive.scans.len(),
        "most consecutive keyframes match: {} of {}",
        edges.len(),
        drive.scans.len()
    );
    let mut rows = Vec::new();
    let mut last_paint = None;
    let out = tempfile::tempdir().expect("tempdir");
    for c in [Constraints::GnssOnly, Constraints::ScanMatching, Constraints::Layout] {
        let r = register(&drive, &edges, Some(&layout), c, &cfg).expect("register");
        if c == Constraints::Layout {
            check_outputs(out.path(), &drive, &r, &truth, off);
        }
        let stamps: Vec<i64> = r.stamps_ns.iter().map(|s| s - off).collect();
        let a = ate(&stamps, &r.world_from_lidar, &truth).expect("ate");
        eprintln!(
            "{c:?}: ATE xy RMSE {:.1} cm max {:.1} cm, 3D RMSE {:.1} cm, rotation {:.2}°, paint {:?}",
            100.0 * a.rmse_xy_m,
            100.0 * a.max_xy_m,
            100.0 * a.rmse_m,
            a.mean_rot_deg,
            r.paint
        );
        assert!(r.covariances.iter().all(|c| c.diagonal().iter().all(|v| v.is_finite() && *v > 0.0)));
        rows.push(a);
        last_paint = r.paint.clone();
    }
    // A layout somewhere else (an INS in another CRS than assumed) is refused, naming the INS.
    let mut far = hdmap_core::RoadLayout::new(layout.origin.clone());
    far.lane_boundaries.push(hdmap_core::LaneBoundary {
        id: hdmap_core::ElementId(1),
        line_type: hdmap_core::LineType::Solid,
        color: hdmap_core::MarkingColor::White,
        width_m: 0.15,
        dash: None,
        points: vec![
            hdmap_core::nalgebra::Point3::new(0.0, 0.0, 0.0),
            hdmap_core::nalgebra::Point3::new(10.0, 0.0, 0.0),
        ],
    });
    let err =
        register(&drive, &edges, Some(&far), Constraints::Layout, &cfg).expect_err("far layout refused");
    assert!(err.to_string().contains("ins.csv") && err.to_string().contains("another CRS"), "{err}");
    // The drive does drift by metres (the case the stage exists for) ...
    assert!(rows[0].max_xy_m > 1.0, "{:?}", rows[0]);
    // ... scan matching alone smooths it but cannot remove a drift shared by neighbours ...
    assert!(rows[1].rmse_xy_m < rows[0].rmse_xy_m, "{:?} vs {:?}", rows[1], rows[0]);
    // ... and anchoring on the layout brings it within the target of 10 cm RMSE.
    assert!(rows[2].rmse_xy_m <= 0.10, "{:?}", rows[2]);
    assert!(rows[2].rmse_m <= 0.10, "{:?}", rows[2]);
    let paint = last_paint.expect("layout run reports paint residuals");
    assert!(paint.on_paint_share >= 0.8, "{paint:?}");
    assert!(paint.median_m <= 0.05, "{paint:?}");
}

/// The written outputs read back: the trajectory file scores the same ATE as the registration
/// in memory, the cloud holds every keyframe point in the layout's CRS, covariances are finite.
fn check_outputs(
    out: &std::path::Path,
    drive: &hdmap_register::drive::Drive,
    r: &hdmap_register::drive::Registration,
    truth: &hdmap_core::Trajectory,
    off: i64,
) {
    use hdmap_register::output::{files, write_outputs};
    let report = write_outputs(out, drive, r).expect("write outputs");
    let traj =
        hdmap_io::trajectory::read_pose_csv(&out.join(files::TRAJECTORY), FrameId::World, FrameId::Lidar(0))
            .expect("trajectory back");
    assert_eq!(traj.origin.as_ref().map(|o| o.epsg), Some(5186));
    let stamps: Vec<i64> = traj.poses.iter().map(|p| p.stamp_ns - off).collect();
    let poses: Vec<_> = traj.poses.iter().map(|p| p.target_from_source).collect();
    let a_file = ate(&stamps, &poses, truth).expect("ate");
    let a_mem = ate(&r.stamps_ns.iter().map(|s| s - off).collect::<Vec<_>>(), &r.world_from_lidar, truth)
        .expect("ate");
    assert!((a_file.rmse_m - a_mem.rmse_m).abs() < 1e-4, "{a_file:?} vs {a_mem:?}");
    let h = hdmap_io::las::read_las_header(&out.join(files::CLOUD)).expect("cloud header");
    let n: usize = drive.scans.iter().map(|(_, s)| s.points_lidar.len()).sum();
    assert_eq!(h.point_count as usize, n);
    assert_eq!(report.cloud_points, n);
    let cov = std::fs::read_to_string(out.join(files::COVARIANCE)).expect("covariance");
    assert_eq!(cov.lines().count(), r.world_from_lidar.len() + 1);
    assert!(
        cov.lines().skip(1).all(|l| l.split(',').skip(1).all(|v| v.parse::<f64>().is_ok_and(f64::is_finite)))
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join(files::REPORT)).expect("report"))
            .expect("json");
    assert_eq!(json["keyframes"].as_u64(), Some(r.world_from_lidar.len() as u64));
}
