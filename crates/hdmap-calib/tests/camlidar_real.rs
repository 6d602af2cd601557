//! Targetless camera–LiDAR refinement on the real PJLab (OpenCalib) LiDAR–camera pairs, from
//! seeded guesses up to ±2° / ±10 cm off per axis.
//!
//! Issue 5 asks for 0.3° / 3 cm from the reference on every pair; that is NOT met, and is
//! marked blocked (BENCHMARK.md, "Targetless camera–LiDAR on the real PJLab pairs"): one frame
//! per pair does not fix the lever arm along the view to 3 cm (placing the LiDAR 0.30 m further
//! forward moves manual_0's road paint by under 1 px, `examples/paint_offsets_pjlab.rs`), and
//! the reference itself lines up less road paint than the refinement's results do. What is
//! asserted here is what holds:
//! * on every pair the objective never gets worse than the guess, and the lever arm is kept;
//! * on `manual_0` the rotation error shrinks at least twofold;
//! * on `manual_0` and `auto_2` the restarts keep every result in the basin that lines up the
//!   road paint: within 1° of the reference (measured 0.21–0.60°; without restarts one of these
//!   auto_2 guesses ended 3.3° off), and lining up more paint than the guess and than the
//!   reference ([`hdmap_calib::paint_check`]);
//! * `auto_1` (little paint seen by the LiDAR) is only required not to fail.

use hdmap_calib::camlidar::{self, ScenePair, TargetlessConfig};
use hdmap_calib::paint_check::{PaintCheck, paint_crossings};

#[test]
fn rotation_refinement_on_the_real_pairs() {
    let Some(root) = hdmap_io::testdata::shared_data("pjlab_sensorscalib") else { return };
    let samples = hdmap_io::pjlab::lidar_camera_samples(&root).expect("samples");
    assert_eq!(samples.len(), 3, "manual_0 + two auto_v2 pairs");
    let cfg = TargetlessConfig::default();
    for s in &samples {
        let gray = hdmap_io::image::read_image(&s.image).expect("image").to_luma8();
        let scan = camlidar::read_scan(&s.scan).expect("scan");
        let pairs = [ScenePair::new(s.name.clone(), s.camera, &gray, &scan, &cfg).expect("pair")];
        // Paint crossings within the refinement's tolerance, counted independently of it.
        let tol_px = s.camera.fx * cfg.paint_tolerance_deg.to_radians();
        let agreeing = |t: &hdmap_core::nalgebra::Isometry3<f64>| {
            paint_crossings(&scan, &gray, &s.camera, t, &PaintCheck::default())
                .iter()
                .filter(|c| c.offset_px.abs() <= tol_px)
                .count()
        };
        let at_reference = agreeing(&s.camera_from_lidar);
        for seed in 0..3 {
            let guess = camlidar::perturbed_guess(&s.camera_from_lidar, seed, 2.0, 0.10);
            let r = camlidar::refine_targetless(&pairs, &guess, &cfg).expect("refine");
            let (deg0, m0) = camlidar::extrinsic_difference(&s.camera_from_lidar, &guess);
            let (deg, m) = camlidar::extrinsic_difference(&s.camera_from_lidar, &r.camera_from_lidar);
            eprintln!(
                "{} seed {seed}: {deg0:.2}° / {:.1} cm → {deg:.3}° / {:.1} cm; paint {} → {} (reference {at_reference}), search {}",
                s.name,
                m0 * 100.0,
                m * 100.0,
                r.paint_agreeing_initial,
                r.paint_agreeing_final,
                r.chosen_search
            );
            assert!(r.score_final[0] >= r.score_initial[0], "{}: objective fell", s.name);
            // Rotation only: the lever arm is the guess's, to the micrometre.
            assert!(
                (r.camera_from_lidar.inverse().translation.vector - guess.inverse().translation.vector)
                    .norm()
                    < 1e-6
            );
            assert_eq!(r.paint_agreeing_final, agreeing(&r.camera_from_lidar));
            if s.name == "manual_0" {
                assert!(deg < deg0 / 2.0, "manual_0 seed {seed}: {deg0:.2}° → {deg:.2}°");
            }
            if s.name != "auto_1" {
                assert!(deg < 1.0, "{} seed {seed}: {deg:.2}° from the reference", s.name);
                assert!(
                    r.paint_agreeing_final > r.paint_agreeing_initial.max(at_reference),
                    "{} seed {seed}: paint {} at the guess, {at_reference} at the reference, {} at the result",
                    s.name,
                    r.paint_agreeing_initial,
                    r.paint_agreeing_final
                );
            }
        }
    }
}

#[test]
fn refuses_a_scan_without_edges_in_view() {
    let Some(root) = hdmap_io::testdata::shared_data("pjlab_sensorscalib") else { return };
    let samples = hdmap_io::pjlab::lidar_camera_samples(&root).expect("samples");
    let s = &samples[0];
    let cfg = TargetlessConfig::default();
    let gray = hdmap_io::image::read_image(&s.image).expect("image").to_luma8();
    // A scan of one flat wall 10 m ahead: no depth or intensity step, nothing to align.
    let wall: Vec<[f64; 3]> =
        (0..2000).map(|i| [10.0, (i % 100) as f64 * 0.05 - 2.5, (i / 100) as f64 * 0.05 - 0.5]).collect();
    let scan = camlidar::Scan { intensity: Some(vec![10.0; wall.len()]), points: wall, ring: None };
    let pairs = [ScenePair::new("wall", s.camera, &gray, &scan, &cfg).expect("pair")];
    let e = camlidar::refine_targetless(&pairs, &s.camera_from_lidar, &cfg).expect_err("nothing to align");
    assert!(e.to_string().contains("wall") && e.to_string().contains("edge points"), "{e}");
    // An image of the wrong size is refused before anything is computed.
    let small = image::imageops::thumbnail(&gray, 100, 60);
    let e = ScenePair::new("small", s.camera, &small, &scan, &cfg).expect_err("size");
    assert!(e.to_string().contains("100×60"), "{e}");
}
