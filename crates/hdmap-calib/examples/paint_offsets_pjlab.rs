//! How well the reference extrinsic of each real PJLab (OpenCalib) LiDAR–camera pair lines
//! up road paint, measured independently of the targetless objective
//! ([`hdmap_calib::paint_check`]: along each LiDAR beam, the offset between a run of bright
//! returns and the bright run in the image along the beam's projected path).
//!
//! Besides the reference, each pair is measured with the reference changed on purpose: the
//! camera turned by +0.25° in yaw (every offset should move by about −fx·0.25°, which checks
//! the measurement), and the LiDAR placed 0.30 m further forward or back, or 0.10 m further
//! left (how much the frame's paint tells about each part of the lever arm). The last row is
//! what the targetless refinement (rotation only, the reference's lever arm) returns from a
//! guess 1.2° off.
//!
//! `cargo run --release -p hdmap-calib --example paint_offsets_pjlab`

use hdmap_calib::camlidar::{self, ScenePair, TargetlessConfig};
use hdmap_calib::paint_check::{OffsetSummary, PaintCheck, PaintCrossing, paint_crossings};
use hdmap_core::nalgebra::{Isometry3, Translation3, UnitQuaternion, Vector3};

fn summary(c: &[PaintCrossing], band: (f64, f64), right: Option<bool>, half_width: f64) -> String {
    let sel = c
        .iter()
        .filter(|x| x.range_m >= band.0 && x.range_m < band.1)
        .filter(|x| right.is_none_or(|r| (x.pixel[0] >= half_width) == r));
    match OffsetSummary::of(sel.clone().map(|x| x.offset_px)) {
        Some(s) => format!(
            "n={:3} median {:+6.1} px (quartiles {:+6.1} … {:+6.1})",
            s.n, s.median_px, s.q25_px, s.q75_px
        ),
        None => format!("n={:3}", sel.count()),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = hdmap_io::testdata::shared_data("pjlab_sensorscalib").ok_or("../shared/data not found")?;
    let check = PaintCheck::default();
    let all = hdmap_io::pjlab::lidar_camera_samples(&root)?;
    if std::env::var_os("MULTI").is_some() {
        let cfg = TargetlessConfig::default();
        let tol: f64 = std::env::var("TOL").ok().map(|v| v.parse()).transpose()?.unwrap_or(5.0);
        for s in &all {
            let scan = camlidar::read_scan(&s.scan)?;
            let gray = hdmap_io::image::read_image(&s.image)?.to_luma8();
            let pairs = [ScenePair::new(s.name.clone(), s.camera, &gray, &scan, &cfg)?];
            let inliers = |t: &Isometry3<f64>| {
                paint_crossings(&scan, &gray, &s.camera, t, &check)
                    .iter()
                    .filter(|c| c.offset_px.abs() <= tol)
                    .count()
            };
            for seed in 0..5 {
                let guess = camlidar::perturbed_guess(&s.camera_from_lidar, seed, 2.0, 0.0);
                let mut best: Option<(usize, f64, Isometry3<f64>)> = None;
                let mut line = String::new();
                for k in 0..5u64 {
                    let start =
                        if k == 0 { guess } else { camlidar::perturbed_guess(&guess, 100 + k, 1.0, 0.0) };
                    let r = camlidar::refine_targetless(&pairs, &start, &cfg)?.camera_from_lidar;
                    let n = inliers(&r);
                    let (deg, _) = camlidar::extrinsic_difference(&s.camera_from_lidar, &r);
                    line += &format!(" {deg:.2}°/{n}");
                    if best.as_ref().is_none_or(|b| n > b.0) {
                        best = Some((n, deg, r));
                    }
                }
                let b = best.expect("some");
                println!(
                    "{} seed {seed}: chosen {:.3}° ({} inliers; reference {}) |{line}",
                    s.name,
                    b.1,
                    b.0,
                    inliers(&s.camera_from_lidar)
                );
            }
        }
        return Ok(());
    }
    for s in all {
        let scan = camlidar::read_scan(&s.scan)?;
        let gray = hdmap_io::image::read_image(&s.image)?.to_luma8();
        println!("{} (fx {:.0} px: 0.1° ≈ {:.1} px)", s.name, s.camera.fx, s.camera.fx * 0.1f64.to_radians());
        let cfg = TargetlessConfig::default();
        let pairs = [ScenePair::new(s.name.clone(), s.camera, &gray, &scan, &cfg)?];
        let guess = camlidar::perturbed_guess(&s.camera_from_lidar, 0, 2.0, 0.0);
        let refined = camlidar::refine_targetless(&pairs, &guess, &cfg)?.camera_from_lidar;
        let (deg, _) = camlidar::extrinsic_difference(&s.camera_from_lidar, &refined);
        println!("  refined: {deg:.3}° from the reference");
        let yaw = UnitQuaternion::from_scaled_axis(Vector3::y() * 0.25f64.to_radians());
        let rows = [
            ("reference", s.camera_from_lidar),
            (
                "reference, camera turned +0.25° in yaw",
                Isometry3::from_parts(Translation3::identity(), yaw) * s.camera_from_lidar,
            ),
            // Lever-arm changes, in the LiDAR frame (x forward, y left).
            (
                "reference, LiDAR placed 0.30 m further forward",
                s.camera_from_lidar * Translation3::new(0.30, 0.0, 0.0),
            ),
            (
                "reference, LiDAR placed 0.30 m further back",
                s.camera_from_lidar * Translation3::new(-0.30, 0.0, 0.0),
            ),
            (
                "reference, LiDAR placed 0.10 m further left",
                s.camera_from_lidar * Translation3::new(0.0, 0.10, 0.0),
            ),
            ("refined (rotation only) from a guess 1.2° off", refined),
        ];
        let half_width = s.camera.width as f64 / 2.0;
        for (tag, t) in rows {
            let c = paint_crossings(&scan, &gray, &s.camera, &t, &check);
            println!("  {tag}: all {}", summary(&c, (0.0, f64::INFINITY), None, half_width));
            for band in [(4.0, 12.0), (12.0, 20.0), (20.0, 35.0)] {
                for (side, right) in [("left ", false), ("right", true)] {
                    println!(
                        "    {:>2}–{:>2} m {side}: {}",
                        band.0,
                        band.1,
                        summary(&c, band, Some(right), half_width)
                    );
                }
            }
        }
    }
    Ok(())
}
