//! The PJLab lidar2lidar data: the left and right LiDARs (tilted ~45°, given only as level
//! guesses) registered onto the top LiDAR in three scenes of the same rig, and the manual
//! p64 → qt pair against the authors' extrinsic.
//!
//! Checks: the three scenes agree with each other (one rig, one extrinsic), the alignments
//! overlap, and the manual pair lands near the authors' extrinsic with at least its overlap.

use std::path::{Path, PathBuf};

use hdmap_core::nalgebra::Isometry3;
use hdmap_register::gicp::{GicpCloud, overlap, pose_difference, voxel_downsample};
use hdmap_register::pair::{PairConfig, register_pair};

fn read(path: &Path) -> Vec<[f64; 3]> {
    let f = hdmap_io::pcd::read_pcd(path).expect("pcd");
    f.cloud
        .positions
        .iter()
        .filter(|p| p.iter().all(|v| v.is_finite()) && p[0].hypot(p[1]).hypot(p[2]) > 1.0)
        .collect()
}

#[test]
fn side_lidars_onto_top_agree_across_scenes() {
    let Some(root) = hdmap_io::testdata::shared_data("pjlab_sensorscalib/lidar2lidar/auto_calib") else {
        return;
    };
    let mut per_side: [Vec<Isometry3<f64>>; 2] = [Vec::new(), Vec::new()];
    for scene in ["0001", "0002", "0003"] {
        let dir = root.join("data").join(scene);
        let ext =
            hdmap_io::pjlab::read_initial_extrinsics(&dir.join("initial_extrinsic.txt")).expect("extrinsics");
        let paths: Vec<PathBuf> = std::fs::read_to_string(dir.join("lidar_cloud_path.txt"))
            .expect("paths")
            .lines()
            .filter_map(|l| l.strip_prefix("path: "))
            .map(|p| root.join(p.trim()))
            .collect();
        let top = read(&paths[0]);
        for side in 0..2 {
            let t0 = std::time::Instant::now();
            let r = register_pair(&top, &read(&paths[side + 1]), &ext[side + 1], &PairConfig::default())
                .expect("register");
            let (deg, m) = pose_difference(&ext[side + 1], &r.target_from_source);
            eprintln!(
                "{scene} side {side}: overlap {:.3}, {deg:.2}° / {:.1} cm from the level guess, {} GICP iterations, {:.1} s",
                r.overlap,
                100.0 * m,
                r.gicp.iterations,
                t0.elapsed().as_secs_f64()
            );
            assert!(r.overlap >= 0.45, "{scene} side {side}: overlap {}", r.overlap);
            per_side[side].push(r.target_from_source);
        }
    }
    // One rig: the scenes must give the same extrinsic.
    for (side, ts) in per_side.iter().enumerate() {
        for i in 0..ts.len() {
            for j in i + 1..ts.len() {
                let (deg, m) = pose_difference(&ts[i], &ts[j]);
                eprintln!("side {side}: scenes {i} vs {j}: {deg:.3}° / {:.1} cm", 100.0 * m);
                assert!(deg < 0.6 && m < 0.05, "side {side}: scenes {i} and {j} differ by {deg}° {m} m");
            }
        }
    }
}

#[test]
fn manual_pair_lands_on_the_authors_extrinsic() {
    let Some(dir) = hdmap_io::testdata::shared_data("pjlab_sensorscalib/lidar2lidar/manual_calib/data")
    else {
        return;
    };
    let given =
        hdmap_io::pjlab::read_extrinsic_json(&dir.join("p64-to-qt-extrinsic.json")).expect("extrinsic");
    let qt = read(&dir.join("qt.pcd"));
    let p64 = read(&dir.join("p64.pcd"));
    let cfg = PairConfig::default();
    let r = register_pair(&qt, &p64, &given, &cfg).expect("register");
    let (deg, cm) = pose_difference(&given, &r.target_from_source);
    let target = GicpCloud::new(voxel_downsample(&qt, cfg.voxel_size_m), 20).expect("target");
    let source = GicpCloud::new(voxel_downsample(&p64, cfg.voxel_size_m), 20).expect("source");
    let o_given = overlap(&target, &source, &given, cfg.overlap_radius_m);
    eprintln!(
        "p64→qt: {deg:.2}° / {:.1} cm from the authors' extrinsic; overlap {:.3} (authors' {o_given:.3})",
        100.0 * cm,
        r.overlap
    );
    assert!(deg < 1.5 && cm < 0.2, "{deg}° {cm} m");
    assert!(r.overlap >= o_given, "{} < {o_given}", r.overlap);
}
