//! Real data: the PJLab lidar2imu sequence (64-beam scans with per-point Unix times, NovAtel
//! INS poses at the scan times, the GNSS–LiDAR extrinsic) georeferences and deskews.

use hdmap_core::FrameId;
use hdmap_register::georef::{GeorefConfig, Georeferencer};
use hdmap_register::gicp::{GicpCloud, GicpConfig, align, pose_difference, voxel_downsample};

/// The pose files are stamped in Beijing time (UTC+8) in their names; the scans' per-point
/// times are Unix seconds (the last point of each scan lies at its name's stamp minus 8 h).
const CST_NS: i64 = 8 * 3600 * 1_000_000_000;

#[test]
fn pjlab_scans_georeference_and_consecutive_scans_agree_with_the_ins() {
    let Some(dir) = hdmap_io::testdata::shared_data("pjlab_sensorscalib/lidar2imu_seq") else { return };
    let mut ins = hdmap_io::trajectory::read_3x4(
        &dir.join("NovAtel-pose-lidar-time.txt"),
        None,
        FrameId::World,
        FrameId::Gnss,
    )
    .expect("INS poses");
    for p in &mut ins.poses {
        p.stamp_ns -= CST_NS;
    }
    let lidar_from_gnss =
        hdmap_io::pjlab::read_extrinsic_json(&dir.join("gnss-to-top_center_lidar-extrinsic.json"))
            .expect("extrinsic");
    let g = Georeferencer {
        world_from_gnss: ins,
        gnss_from_lidar: lidar_from_gnss.inverse(),
        lidar_time_offset_ns: 0,
    };
    let mut files: Vec<_> = std::fs::read_dir(dir.join("top_center_lidar"))
        .expect("scans")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 5);
    let mut scans = Vec::new();
    for (k, f) in files.iter().enumerate() {
        let pcd = hdmap_io::pcd::read_pcd(f).expect("pcd");
        match g.georeference(f, &pcd.cloud, &GeorefConfig::default()) {
            Ok(s) => {
                assert!(s.points_lidar.len() > 50_000, "{}: {} points", f.display(), s.points_lidar.len());
                scans.push(s);
            }
            // The first sweep started 0.1 s before the first INS pose: a clear error, not a guess.
            Err(e) => {
                assert_eq!(k, 0, "{e}");
                let msg = e.to_string();
                assert!(msg.contains("outside") || msg.contains("trajectory"), "{msg}");
            }
        }
    }
    assert_eq!(scans.len(), 4);
    // Consecutive deskewed scans in the world agree: GICP from the INS-predicted relative pose
    // moves it by little (the INS is good over 0.1 s).
    let cfg = GicpConfig::default();
    for w in scans.windows(2) {
        let a = GicpCloud::new(voxel_downsample(&w[0].points_lidar, 0.25), 20).expect("cloud");
        let b = GicpCloud::new(voxel_downsample(&w[1].points_lidar, 0.25), 20).expect("cloud");
        let init = w[0].world_from_lidar.inverse() * w[1].world_from_lidar;
        let r = align(&a, &b, &init, &cfg);
        let (deg, m) = pose_difference(&init, &r.target_from_source);
        eprintln!("scan-to-scan correction of the INS relative pose: {deg:.3}° {:.1} cm", 100.0 * m);
        assert!(r.converged && deg < 0.5 && m < 0.10, "{deg}° {m} m");
    }
}
