//! Trajectories: the real NovAtel INS CSV and PJLab stamped pose files.

use hdmap_core::FrameId;
use hdmap_core::nalgebra::Vector3;
use hdmap_io::testdata::shared_data;
use hdmap_io::trajectory::{TrajectoryFormat, detect_format, read_3x4, read_ins_csv, write_ins_csv};

#[test]
fn novatel_csv_attitude_and_time_agree_with_its_own_velocities() {
    let Some(p) = shared_data("pjlab_sensorscalib/gnss_ins_trajectory/novatel-enu.csv") else { return };
    assert_eq!(detect_format(&p).expect("format"), TrajectoryFormat::InsCsv);
    let ins = read_ins_csv(&p, None).unwrap_or_else(|e| panic!("{e}"));
    let t = &ins.trajectory;
    assert_eq!(t.poses.len(), 18_965);
    assert!((t.median_rate_hz().expect("rate") - 100.0).abs() < 0.5);
    // 1. Heading: the INS forward axis (body +y) points along the reported horizontal velocity.
    let mut errs = Vec::new();
    for (p, v) in t.poses.iter().zip(&ins.velocity_enu_mps) {
        let speed = (v[0] * v[0] + v[1] * v[1]).sqrt();
        if speed > 1.0 {
            let fwd = p.target_from_source.rotation * Vector3::y();
            let a = fwd.y.atan2(fwd.x) - v[1].atan2(v[0]);
            errs.push(a.sin().atan2(a.cos()).abs().to_degrees());
        }
    }
    errs.sort_by(f64::total_cmp);
    let p95 = errs[errs.len() * 95 / 100];
    assert!(errs.len() > 10_000 && p95 < 3.0, "heading vs velocity: 95th pct {p95:.2}° over {}", errs.len());
    // 2. Time stamps: finite-difference velocity matches the reported one.
    let mut diffs = Vec::new();
    for i in 1..t.poses.len() - 1 {
        let (a, b) = (&t.poses[i - 1], &t.poses[i + 1]);
        let dt = (b.stamp_ns - a.stamp_ns) as f64 * 1e-9;
        let d = (b.target_from_source.translation.vector - a.target_from_source.translation.vector) / dt;
        let v = ins.velocity_enu_mps[i];
        diffs.push(((d.x - v[0]).powi(2) + (d.y - v[1]).powi(2)).sqrt());
    }
    diffs.sort_by(f64::total_cmp);
    let median = diffs[diffs.len() / 2];
    assert!(median < 0.05, "median |Δp/Δt − v| = {median:.4} m/s");
    // 3. Our INS CSV writer round-trips the solution to within print precision.
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("ins.csv");
    write_ins_csv(&out, &ins).unwrap_or_else(|e| panic!("{e}"));
    let back = read_ins_csv(&out, None).unwrap_or_else(|e| panic!("{e}"));
    for (a, b) in ins.trajectory.poses.iter().zip(&back.trajectory.poses) {
        assert_eq!(a.stamp_ns, b.stamp_ns);
        assert!(
            (a.target_from_source.translation.vector - b.target_from_source.translation.vector).norm() < 1e-9
        );
        assert!(a.target_from_source.rotation.angle_to(&b.target_from_source.rotation) < 1e-9);
    }
}

#[test]
fn pjlab_stamped_pose_files_read() {
    let Some(dir) = shared_data("pjlab_sensorscalib/lidar2imu_seq") else { return };
    for name in [
        "top_center_lidar-enu.txt",
        "top_center_lidar-pose.txt",
        "NovAtel-pose-lidar-time.txt",
        "top_center_lidar-utm.txt",
    ] {
        let p = dir.join(name);
        assert_eq!(detect_format(&p).expect("format"), TrajectoryFormat::Stamped3x4, "{name}");
        let t = read_3x4(&p, None, FrameId::World, FrameId::Lidar(0)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.poses.len(), 1081, "{name}");
        assert!((t.median_rate_hz().expect("rate") - 10.0).abs() < 0.1);
        // The five shipped scans are named by the first five stamps.
        assert_eq!(
            t.poses[0].stamp_ns,
            hdmap_io::trajectory::parse_stamp("2021-10-26-16-21-29-468").expect("stamp")
        );
    }
}
