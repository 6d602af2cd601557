//! Golden tests in the small_gicp style: a known `target_from_source` is recovered forward,
//! inverse, and from seeded perturbed starts, on a synthetic street and on a real PJLab scan.

use hdmap_core::nalgebra::{Isometry3, Point3, Vector3};
use hdmap_register::gicp::{GicpCloud, GicpConfig, align, pose_difference, voxel_downsample};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

/// A street: road with crossfall, two facades with recesses, poles and parked boxes.
fn street(rng: &mut ChaCha8Rng, n: usize) -> Vec<[f64; 3]> {
    let mut pts = Vec::with_capacity(n);
    while pts.len() < n {
        let x: f64 = rng.random_range(-40.0..40.0);
        let kind = rng.random_range(0..10);
        let p = match kind {
            0..=4 => {
                let y: f64 = rng.random_range(-10.0..10.0);
                [x, y, 0.02 * y.abs() + 0.01 * (x * 0.3).sin()]
            }
            5 | 6 => {
                // Facades with 1 m recesses every 10 m.
                let side: f64 = if kind == 5 { -11.0 } else { 11.0 };
                let recess = if (x / 10.0).floor() as i64 % 2 == 0 { 0.0 } else { 1.0 };
                [x, side + side.signum() * recess, rng.random_range(0.0..12.0)]
            }
            7 | 8 => {
                // Poles every 13 m, r = 0.15 m.
                let c = (x / 13.0).round() * 13.0;
                let a: f64 = rng.random_range(0.0..std::f64::consts::TAU);
                [c + 0.15 * a.cos(), 8.0 + 0.15 * a.sin(), rng.random_range(0.0..6.0)]
            }
            _ => {
                // Parked boxes 4.5 × 1.8 × 1.5 m along y = −7.
                let c = (x / 9.0).round() * 9.0;
                let u: f64 = rng.random_range(-2.25..2.25);
                let face = rng.random_range(0..3);
                match face {
                    0 => [c + u, -7.9, rng.random_range(0.0..1.5)],
                    1 => [c + u, rng.random_range(-7.9..-6.1), 1.5],
                    _ => [c + 2.25 * u.signum(), rng.random_range(-7.9..-6.1), rng.random_range(0.0..1.5)],
                }
            }
        };
        pts.push(p);
    }
    pts
}

fn transform(t: &Isometry3<f64>, pts: &[[f64; 3]], rng: &mut ChaCha8Rng, noise_m: f64) -> Vec<[f64; 3]> {
    let nd = Normal::new(0.0, noise_m.max(1e-12)).expect("normal");
    pts.iter()
        .map(|p| {
            let q = t * Point3::from(*p);
            [q.x + nd.sample(rng), q.y + nd.sample(rng), q.z + nd.sample(rng)]
        })
        .collect()
}

fn check(target: &GicpCloud, source: &GicpCloud, truth: &Isometry3<f64>, init: &Isometry3<f64>, what: &str) {
    let r = align(target, source, init, &GicpConfig::default());
    let (deg, m) = pose_difference(truth, &r.target_from_source);
    eprintln!(
        "{what}: {deg:.4}° {:.2} cm, {} iterations, converged {}",
        100.0 * m,
        r.iterations,
        r.converged
    );
    assert!(r.converged, "{what}: not converged");
    assert!(deg < 0.05 && m < 0.01, "{what}: off by {deg:.4}° {m:.4} m");
}

#[test]
fn synthetic_street_forward_inverse_and_perturbed() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    // Target and source are sampled independently (no point is in both) with 1 cm noise.
    let world = street(&mut rng, 60_000);
    let t_ts = Isometry3::new(Vector3::new(0.6, -0.35, 0.08), Vector3::new(0.01, -0.008, 0.07));
    let target_pts =
        voxel_downsample(&transform(&Isometry3::identity(), &world[..30_000], &mut rng, 0.01), 0.2);
    let source_pts = voxel_downsample(&transform(&t_ts.inverse(), &world[30_000..], &mut rng, 0.01), 0.2);
    let target = GicpCloud::new(target_pts, 20).expect("target");
    let source = GicpCloud::new(source_pts, 20).expect("source");
    check(&target, &source, &t_ts, &Isometry3::identity(), "forward");
    check(&source, &target, &t_ts.inverse(), &Isometry3::identity(), "inverse");
    for k in 0..5 {
        let d = Isometry3::new(
            Vector3::new(
                rng.random_range(-0.4..0.4),
                rng.random_range(-0.4..0.4),
                rng.random_range(-0.1..0.1),
            ),
            Vector3::new(
                rng.random_range(-0.03..0.03),
                rng.random_range(-0.03..0.03),
                rng.random_range(-0.06..0.06),
            ),
        );
        check(&target, &source, &t_ts, &(t_ts * d), &format!("perturbed start {k}"));
    }
    // And far from the truth it does not pretend: a 40° start does not land on the truth.
    let far = t_ts * Isometry3::new(Vector3::new(6.0, 4.0, 0.0), Vector3::new(0.0, 0.0, 0.7));
    let r = align(&target, &source, &far, &GicpConfig::default());
    let (deg, m) = pose_difference(&t_ts, &r.target_from_source);
    assert!(deg > 1.0 || m > 0.1, "a 40° / 7 m start cannot converge with 1 m correspondences");
}

#[test]
fn real_pjlab_scan_against_a_moved_resampled_copy() {
    let Some(dir) = hdmap_io::testdata::shared_data("pjlab_sensorscalib/lidar2imu_seq/top_center_lidar")
    else {
        return;
    };
    let scan = hdmap_io::pcd::read_pcd(&dir.join("2021-10-26-16-21-29-468.pcd")).expect("scan");
    let raw: Vec<[f64; 3]> =
        scan.cloud.positions.iter().filter(|p| (p[0] * p[0] + p[1] * p[1]).sqrt() > 2.0).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let t_ts = Isometry3::new(Vector3::new(-0.8, 0.5, 0.1), Vector3::new(-0.01, 0.012, -0.09));
    let target = GicpCloud::new(voxel_downsample(&raw, 0.25), 20).expect("target");
    // The source: the scan moved, 2 cm noise, and a voxel grid offset by a third of a voxel.
    let moved = transform(&t_ts.inverse(), &raw, &mut rng, 0.02);
    let off: Vec<[f64; 3]> = moved.iter().map(|p| [p[0] + 0.083, p[1] + 0.083, p[2] + 0.083]).collect();
    let src: Vec<[f64; 3]> =
        voxel_downsample(&off, 0.25).iter().map(|p| [p[0] - 0.083, p[1] - 0.083, p[2] - 0.083]).collect();
    let source = GicpCloud::new(src, 20).expect("source");
    check(&target, &source, &t_ts, &Isometry3::identity(), "real forward");
    check(&source, &target, &t_ts.inverse(), &Isometry3::identity(), "real inverse");
}
