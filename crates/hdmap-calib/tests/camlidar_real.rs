//! Targetless camera–LiDAR refinement on the real PJLab (OpenCalib) LiDAR–camera pairs, from
//! seeded guesses up to ±2° / ±10 cm off per axis.
//!
//! Issue 5 asks for 0.3° / 3 cm from the reference on every pair; that is NOT met, and is
//! marked blocked (BENCHMARK.md, "Targetless camera–LiDAR on the real PJLab pairs"): one frame
//! per pair does not fix the lever arm along the view to 3 cm (placing the LiDAR 0.30 m further
//! forward moves manual_0's road paint by under 1 px, `examples/paint_offsets_pjlab.rs`), and
//! the reference itself leaves 7–15 px of paint offset. Rotation-only refinement reaches
//! 0.19–0.43° on `manual_0` and leaves the hazy `auto_*` frames. What is asserted here is what
//! holds: on every pair the objective never gets worse than the guess, and on `manual_0` the
//! rotation error shrinks at least twofold.

use hdmap_calib::camlidar::{self, ScenePair, TargetlessConfig};

#[test]
fn rotation_refinement_on_the_real_pairs() {
    let Some(root) = hdmap_io::testdata::shared_data("pjlab_sensorscalib") else { return };
    let samples = hdmap_io::pjlab::lidar_camera_samples(&root).expect("samples");
    assert_eq!(samples.len(), 3, "manual_0 + two auto_v2 pairs");
    let cfg = TargetlessConfig::default();
    for s in &samples {
        let pairs = [ScenePair::from_files(s.camera, &s.image, &s.scan, &cfg).expect("pair")];
        for seed in 0..3 {
            let guess = camlidar::perturbed_guess(&s.camera_from_lidar, seed, 2.0, 0.10);
            let r = camlidar::refine_targetless(&pairs, &guess, &cfg).expect("refine");
            let (deg0, m0) = camlidar::extrinsic_difference(&s.camera_from_lidar, &guess);
            let (deg, m) = camlidar::extrinsic_difference(&s.camera_from_lidar, &r.camera_from_lidar);
            eprintln!(
                "{} seed {seed}: {deg0:.2}° / {:.1} cm → {deg:.3}° / {:.1} cm",
                s.name,
                m0 * 100.0,
                m * 100.0
            );
            assert!(r.score_final[0] >= r.score_initial[0], "{}: objective fell", s.name);
            // Rotation only: the lever arm is the guess's, to the micrometre.
            assert!(
                (r.camera_from_lidar.inverse().translation.vector - guess.inverse().translation.vector)
                    .norm()
                    < 1e-6
            );
            if s.name == "manual_0" {
                assert!(deg < deg0 / 2.0, "manual_0 seed {seed}: {deg0:.2}° → {deg:.2}°");
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
