//! Hand–eye calibration from motion: a sensor's motions (e.g. LiDAR scan matching) and the
//! body's motions over the same intervals (e.g. the INS) give `body_from_sensor`.
//!
//! With `B = body_i_from_body_j`, `A = sensor_i_from_sensor_j` and `X = body_from_sensor`,
//! every pair satisfies `B·X = X·A`: rotation axes map as `axis(B) = R_X·axis(A)` and
//! translations as `(R_B − I)·t_X = R_X·t_A − t_B`. A vehicle driving on a plane turns about one
//! axis only, which leaves the rotation about it to the translation equations (straight driving:
//! `t_B ≈ R_X·t_A`) and the lever arm along it unobservable: such directions are reported and
//! held at the prior instead of being invented.

use hdmap_core::nalgebra::{
    Isometry3, Matrix3, Matrix6, Rotation3, Translation3, UnitQuaternion, Vector3, Vector6,
};
use rayon::prelude::*;

use crate::CalibError;

/// The result of [`hand_eye`].
#[derive(Debug, Clone)]
pub struct HandEye {
    /// `body_from_sensor`.
    pub body_from_sensor: Isometry3<f64>,
    /// RMS of `axis(B) − R_X·axis(A)` over the turning pairs, degrees.
    pub rotation_rms_deg: f64,
    /// RMS of `(R_B − I)·t_X − (R_X·t_A − t_B)`, m.
    pub translation_rms_m: f64,
    /// Body-frame directions along which the motions do not determine the lever arm (held at
    /// the prior), e.g. the vertical for planar driving.
    pub unobservable: Vec<Vector3<f64>>,
    /// Pairs used.
    pub pairs: usize,
}

/// Solves `B·X = X·A` for `X = body_from_sensor` from `(A, B)` pairs. `prior` is the nominal
/// extrinsic: its lever arm is kept along unobservable directions.
pub fn hand_eye(
    pairs: &[(Isometry3<f64>, Isometry3<f64>)],
    prior: &Isometry3<f64>,
) -> Result<HandEye, CalibError> {
    if pairs.len() < 3 {
        return Err(CalibError::Degenerate(format!(
            "{} motion pairs, hand–eye needs at least 3",
            pairs.len()
        )));
    }
    if pairs.iter().any(|(a, b)| {
        !(a.translation.vector.iter().chain(b.translation.vector.iter()).all(|v| v.is_finite())
            && a.rotation.coords.iter().chain(b.rotation.coords.iter()).all(|v| v.is_finite()))
    }) {
        return Err(CalibError::Degenerate("a motion is not finite".into()));
    }
    let mut t_x = prior.translation.vector;
    let mut r_x = prior.rotation.to_rotation_matrix();
    // Lever-arm directions the motions determine to better than this (1 σ) are solved; the
    // others are held at the prior.
    const MAX_SIGMA_M: f64 = 0.01;
    let mut free: Vec<Vector3<f64>> = Vec::new();
    for _ in 0..30 {
        // Rotation: Kabsch over rotation axes (scaled by angle) and, for every pair, the
        // translation corrected for the lever arm (t_B + (R_B − I)·t_X = R_X·t_A).
        let mut h = Matrix3::zeros();
        for (a, b) in pairs {
            let (aa, ab) = (a.rotation.scaled_axis(), b.rotation.scaled_axis());
            // Rotation axes weigh like 100 m of travel per radian: a body (INS) translation carries
            // the GNSS drift (decimetres per second in a street canyon), its rotation does not;
            // translations still fix the rotation about a vehicle's single turning axis.
            h += 100.0 * 100.0 * aa * ab.transpose();
            let c = b.translation.vector + rb_minus_i(b) * t_x;
            h += a.translation.vector * c.transpose();
        }
        let svd = h.svd(true, true);
        let (Some(u), Some(vt)) = (svd.u, svd.v_t) else {
            return Err(CalibError::Degenerate("hand–eye rotation: SVD failed".into()));
        };
        let v = vt.transpose();
        let mut d = Matrix3::identity();
        d[(2, 2)] = (v * u.transpose()).determinant().signum();
        r_x = Rotation3::from_matrix_unchecked(v * d * u.transpose());
        // Translation: least squares on (R_B − I)·t = R_X·t_A − t_B, held at the prior along
        // directions the motions leave (nearly) free.
        let mut ata = Matrix3::zeros();
        let mut atb = Vector3::zeros();
        for (a, b) in pairs {
            let m = rb_minus_i(b);
            ata += m.transpose() * m;
            atb += m.transpose() * (r_x * a.translation.vector - b.translation.vector);
        }
        // Noise of one translation equation, from the residuals at the current estimate.
        let sigma = {
            let s: f64 =
                pairs.iter().map(|(a, b)| translation_residual(a, b, &r_x, &t_x).norm_squared()).sum();
            (s / (3.0 * pairs.len() as f64)).sqrt().max(1e-4)
        };
        let eig = ata.symmetric_eigen();
        let mut t = Vector3::zeros();
        free.clear();
        for k in 0..3 {
            let dir: Vector3<f64> = eig.eigenvectors.column(k).into_owned();
            let lambda = eig.eigenvalues[k].max(0.0);
            if lambda > 0.0 && sigma / lambda.sqrt() <= MAX_SIGMA_M {
                t += dir * (dir.dot(&atb) / lambda);
            } else {
                t += dir * dir.dot(&prior.translation.vector);
                free.push(dir);
            }
        }
        t_x = t;
    }
    let unobservable = free;
    let mut rot_sq = 0.0;
    let mut n_rot = 0usize;
    let mut tr_sq = 0.0;
    for (a, b) in pairs {
        let (aa, ab) = (a.rotation.scaled_axis(), b.rotation.scaled_axis());
        if ab.norm() > 1e-3 {
            rot_sq += (ab - r_x * aa).norm_squared();
            n_rot += 1;
        }
        tr_sq += translation_residual(a, b, &r_x, &t_x).norm_squared();
    }
    Ok(HandEye {
        body_from_sensor: Isometry3::from_parts(
            Translation3::from(t_x),
            UnitQuaternion::from_rotation_matrix(&r_x),
        ),
        rotation_rms_deg: if n_rot > 0 { (rot_sq / n_rot as f64).sqrt().to_degrees() } else { f64::NAN },
        translation_rms_m: (tr_sq / pairs.len() as f64).sqrt(),
        unobservable,
        pairs: pairs.len(),
    })
}

/// A sensor's motion between two of its stamps (sensor clock), e.g. a scan match.
#[derive(Debug, Clone, Copy)]
pub struct TimedMotion {
    /// Stamp of the first pose, sensor clock, ns.
    pub from_ns: i64,
    /// Stamp of the second pose, sensor clock, ns.
    pub to_ns: i64,
    /// `sensor_from_sensor`: the second pose in the first's frame.
    pub sensor_motion: Isometry3<f64>,
}

/// The result of [`time_offset`].
#[derive(Debug, Clone)]
pub struct TimeOffset {
    /// The sensor clock offset: sensor stamps read `true_time + offset_ns` (hdmap-core's
    /// `Extrinsic::time_offset_ns`), the body (INS) clock being true time.
    pub offset_ns: i64,
    /// 1 σ from the curvature of the cost at the minimum, ns.
    pub sigma_ns: f64,
    /// RMS rotation-axis residual at the offset, degrees.
    pub rotation_rms_deg: f64,
    /// Motions used (those whose body poses exist over the whole search range).
    pub motions: usize,
    /// The cost (sum of squared rotation-axis residuals, rad²) on the coarse grid: (offset ns,
    /// cost), for the report.
    pub curve: Vec<(i64, f64)>,
}

/// The sensor clock offset against the body (INS) clock from motion: the rotation of each
/// sensor motion must equal the body's over the same true-time interval, seen through the
/// extrinsic rotation. For each candidate offset the body motions are taken at the shifted
/// times, the rotation `R_X` is re-solved (Kabsch on rotation axes) and the squared axis
/// residuals are summed; the offset minimising that sum is found on a 1 ms grid over
/// `±max_abs_ns`, then refined on a 50 µs grid and a parabola. The signal is the body's angular
/// acceleration: a drive that turns, and pitches and rolls, reveals the offset; a constant turn
/// rate does not. `body_at(t)` is `world_from_body` at a body-clock time (`None` outside the
/// trajectory).
pub fn time_offset(
    motions: &[TimedMotion],
    body_at: &(dyn Fn(i64) -> Option<Isometry3<f64>> + Sync),
    max_abs_ns: i64,
) -> Result<TimeOffset, CalibError> {
    if max_abs_ns <= 0 {
        return Err(CalibError::Degenerate(format!("time offset search range {max_abs_ns} ns")));
    }
    // Only motions whose body poses exist at every candidate offset.
    let usable: Vec<&TimedMotion> = motions
        .iter()
        .filter(|m| {
            m.to_ns > m.from_ns
                && m.sensor_motion.rotation.coords.iter().all(|v| v.is_finite())
                && [
                    m.from_ns - max_abs_ns,
                    m.from_ns + max_abs_ns,
                    m.to_ns - max_abs_ns,
                    m.to_ns + max_abs_ns,
                ]
                .iter()
                .all(|t| body_at(*t).is_some())
        })
        .collect();
    if usable.len() < 10 {
        return Err(CalibError::Degenerate(format!(
            "{} of {} motions lie inside the INS trajectory with ±{} ms to spare; the time offset needs at least 10",
            usable.len(),
            motions.len(),
            max_abs_ns as f64 * 1e-6
        )));
    }
    // Sum of squared axis residuals with R_X re-solved, at offset δ (true = stamp − δ).
    let cost = |offset_ns: i64| -> f64 {
        let axes: Vec<(Vector3<f64>, Vector3<f64>)> = usable
            .iter()
            .filter_map(|m| {
                let bi = body_at(m.from_ns - offset_ns)?;
                let bj = body_at(m.to_ns - offset_ns)?;
                Some((m.sensor_motion.rotation.scaled_axis(), (bi.inverse() * bj).rotation.scaled_axis()))
            })
            .collect();
        let mut h = Matrix3::zeros();
        for (a, b) in &axes {
            h += a * b.transpose();
        }
        let r = kabsch(&h);
        axes.iter().map(|(a, b)| (b - r * a).norm_squared()).sum()
    };
    let step = 1_000_000i64;
    let n = max_abs_ns / step;
    let curve: Vec<(i64, f64)> = (-n..=n).into_par_iter().map(|k| (k * step, cost(k * step))).collect();
    let coarse = curve.iter().min_by(|a, b| a.1.total_cmp(&b.1)).map(|c| c.0).unwrap_or(0);
    let fine_step = 50_000i64;
    let fine: Vec<(i64, f64)> = (-20..=20i64)
        .into_par_iter()
        .map(|k| coarse + k * fine_step)
        .filter(|o| o.abs() <= max_abs_ns)
        .map(|o| (o, cost(o)))
        .collect();
    let best = fine.iter().enumerate().min_by(|a, b| a.1.1.total_cmp(&b.1.1)).map(|(i, _)| i).unwrap_or(0);
    let (o0, c0) = fine[best];
    if best == 0 || best + 1 == fine.len() {
        return Err(CalibError::Degenerate(format!(
            "the time offset cost has no minimum inside ±{} ms (best at {:.2} ms)",
            max_abs_ns as f64 * 1e-6,
            o0 as f64 * 1e-6
        )));
    }
    let (cm, cp) = (fine[best - 1].1, fine[best + 1].1);
    // Parabola through the three points around the minimum: its vertex and curvature.
    let curv = (cp - 2.0 * c0 + cm) / (fine_step as f64).powi(2);
    let shift = if curv > 0.0 { 0.5 * (cm - cp) / (cp - 2.0 * c0 + cm) * fine_step as f64 } else { 0.0 };
    let offset_ns = o0 + shift.round() as i64;
    // Residual variance per axis component; var(δ) = 2σ² / S''.
    let dof = (3 * usable.len()).saturating_sub(4).max(1) as f64;
    let sigma2 = c0 / dof;
    let sigma_ns = if curv > 0.0 { (2.0 * sigma2 / curv).sqrt() } else { f64::INFINITY };
    Ok(TimeOffset {
        offset_ns,
        sigma_ns,
        rotation_rms_deg: (c0 / usable.len() as f64).sqrt().to_degrees(),
        motions: usable.len(),
        curve,
    })
}

/// The rotation `R` maximising `tr(R·H)` for `H = Σ a·bᵀ` (so `b ≈ R·a`), a proper rotation.
fn kabsch(h: &Matrix3<f64>) -> Matrix3<f64> {
    let svd = h.svd(true, true);
    let (Some(u), Some(vt)) = (svd.u, svd.v_t) else {
        return Matrix3::identity();
    };
    let v = vt.transpose();
    let mut d = Matrix3::identity();
    d[(2, 2)] = (v * u.transpose()).determinant().signum();
    v * d * u.transpose()
}

/// Covariance of a hand–eye solution, (tx, ty, tz, rx, ry, rz) in m² and rad², as a
/// perturbation on the left of `body_from_sensor` (`X' = exp(ξ)·X`, hdmap-core's
/// `Extrinsic::covariance` convention): the spread of `resamples` solutions on pairs drawn
/// with replacement (seeded, deterministic). Directions [`HandEye::unobservable`] names get
/// the variance `prior_var_m2` of the prior they are held at.
pub fn hand_eye_covariance(
    pairs: &[(Isometry3<f64>, Isometry3<f64>)],
    prior: &Isometry3<f64>,
    solution: &HandEye,
    resamples: usize,
    seed: u64,
    prior_var_m2: f64,
) -> Result<Matrix6<f64>, CalibError> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let draws: Vec<Vec<usize>> = (0..resamples)
        .map(|_| (0..pairs.len()).map(|_| rng.random_range(0..pairs.len())).collect())
        .collect();
    let x = solution.body_from_sensor;
    let deltas = draws
        .par_iter()
        .map(|idx| {
            let sample: Vec<_> = idx.iter().map(|&i| pairs[i]).collect();
            let r = hand_eye(&sample, prior)?;
            let d = r.body_from_sensor * x.inverse();
            let (dt, dr) = (d.translation.vector, d.rotation.scaled_axis());
            Ok(Vector6::new(dt.x, dt.y, dt.z, dr.x, dr.y, dr.z))
        })
        .collect::<Result<Vec<_>, CalibError>>()?;
    let mut cov = Matrix6::zeros();
    for d in &deltas {
        cov += d * d.transpose();
    }
    cov /= deltas.len().max(1) as f64;
    for dir in &solution.unobservable {
        let mut t = cov.fixed_view_mut::<3, 3>(0, 0);
        t += dir * dir.transpose() * prior_var_m2;
    }
    Ok(cov)
}

/// `R_B − I` of a body motion.
fn rb_minus_i(b: &Isometry3<f64>) -> Matrix3<f64> {
    b.rotation.to_rotation_matrix().into_inner() - Matrix3::identity()
}

/// `(R_B − I)·t_X − (R_X·t_A − t_B)`: how far a pair is from `B·X = X·A` in translation.
fn translation_residual(
    a: &Isometry3<f64>,
    b: &Isometry3<f64>,
    r_x: &Rotation3<f64>,
    t_x: &Vector3<f64>,
) -> Vector3<f64> {
    rb_minus_i(b) * t_x - (r_x * a.translation.vector - b.translation.vector)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// Body poses of a drive: straight runs and turns with small roll/pitch (road camber), or,
    /// when `rich`, strong roll and pitch changes between poses (a calibration course or a
    /// hand-held rig; ordinary grades change too slowly to reveal the vertical lever arm).
    fn drive(rich: bool, rng: &mut rand_chacha::ChaCha8Rng) -> Vec<Isometry3<f64>> {
        let mut poses = Vec::new();
        let (mut x, mut y, mut yaw) = (0.0f64, 0.0f64, 0.0f64);
        for i in 0..600 {
            let turn = if (i / 60) % 2 == 1 { 0.035 } else { 0.0 };
            yaw += turn;
            x += 2.0 * yaw.cos();
            y += 2.0 * yaw.sin();
            let pitch =
                if rich { 0.15 * (i as f64 * 0.3).sin() } else { 0.002 * rng.random_range(-1.0..1.0) };
            let roll =
                if rich { 0.12 * (i as f64 * 0.25).cos() } else { 0.002 * rng.random_range(-1.0..1.0) };
            let z = if rich { 0.3 * (i as f64 * 0.3).sin() } else { 0.0 };
            poses.push(Isometry3::from_parts(
                Translation3::new(x, y, z),
                UnitQuaternion::from_euler_angles(roll, pitch, yaw),
            ));
        }
        poses
    }

    fn pairs(
        poses: &[Isometry3<f64>],
        x: &Isometry3<f64>,
        rng: &mut rand_chacha::ChaCha8Rng,
    ) -> Vec<(Isometry3<f64>, Isometry3<f64>)> {
        poses
            .windows(2)
            .map(|w| {
                let b = w[0].inverse() * w[1];
                let a_true = x.inverse() * b * x;
                // Scan-matching noise: 0.01° and 3 mm per motion.
                let noise = Isometry3::new(
                    Vector3::new(
                        rng.random_range(-1.0..1.0),
                        rng.random_range(-1.0..1.0),
                        rng.random_range(-1.0..1.0),
                    ) * 0.003,
                    Vector3::new(
                        rng.random_range(-1.0..1.0),
                        rng.random_range(-1.0..1.0),
                        rng.random_range(-1.0..1.0),
                    ) * 0.01f64.to_radians(),
                );
                (a_true * noise, b)
            })
            .collect()
    }

    fn truth() -> Isometry3<f64> {
        Isometry3::from_parts(
            Translation3::new(1.324, -0.017, 1.961),
            UnitQuaternion::from_euler_angles(
                0.35f64.to_radians(),
                -0.28f64.to_radians(),
                90.62f64.to_radians(),
            ),
        )
    }

    #[test]
    fn planar_drive_recovers_rotation_and_horizontal_lever_arm_and_flags_the_vertical() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(17);
        let x = truth();
        let poses = drive(false, &mut rng);
        let ps = pairs(&poses, &x, &mut rng);
        // The nominal mounting: 0.7° and 10 cm off, vertical lever arm 5 cm off.
        let prior = Isometry3::from_parts(
            Translation3::new(1.25, 0.05, 1.91),
            UnitQuaternion::from_euler_angles(0.0, 0.0, 90.0f64.to_radians()),
        );
        let r = hand_eye(&ps, &prior).expect("hand-eye");
        let d = x.inverse() * r.body_from_sensor;
        let t = r.body_from_sensor.translation.vector - x.translation.vector;
        eprintln!(
            "planar: {:.4}° , dt {:?}, unobservable {:?}",
            d.rotation.angle().to_degrees(),
            t,
            r.unobservable
        );
        assert!(d.rotation.angle().to_degrees() < 0.05, "{}", d.rotation.angle().to_degrees());
        assert!(t.x.hypot(t.y) < 0.02, "{t:?}");
        assert_eq!(r.unobservable.len(), 1, "{:?}", r.unobservable);
        assert!(r.unobservable[0].z.abs() > 0.99, "{:?}", r.unobservable);
        // Along the unobservable vertical the prior is kept, not invented.
        assert!((r.body_from_sensor.translation.vector.z - prior.translation.vector.z).abs() < 0.01);
    }

    #[test]
    fn rich_motion_recovers_the_full_extrinsic() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(23);
        let x = truth();
        let poses = drive(true, &mut rng);
        let ps = pairs(&poses, &x, &mut rng);
        let prior = Isometry3::from_parts(
            Translation3::new(1.2, 0.1, 1.8),
            UnitQuaternion::from_euler_angles(0.0, 0.0, 89.0f64.to_radians()),
        );
        let r = hand_eye(&ps, &prior).expect("hand-eye");
        let d = x.inverse() * r.body_from_sensor;
        eprintln!(
            "rich: {:.4}°, {:.4} m, unobservable {:?}",
            d.rotation.angle().to_degrees(),
            d.translation.vector.norm(),
            r.unobservable
        );
        assert!(d.rotation.angle().to_degrees() < 0.05);
        assert!(d.translation.vector.norm() < 0.02, "{:?}", d.translation.vector);
        assert!(r.unobservable.is_empty());
    }

    /// A body that turns, pitches and rolls smoothly: `world_from_body` at time `t_ns`.
    fn wavy_body(t_ns: i64) -> Option<Isometry3<f64>> {
        let t = t_ns as f64 * 1e-9;
        (0.0..=60.0).contains(&t).then(|| {
            Isometry3::from_parts(
                Translation3::new(10.0 * t, 3.0 * (0.2 * t).sin(), 0.3 * (0.7 * t).sin()),
                UnitQuaternion::from_euler_angles(
                    0.08 * (1.1 * t).cos(),
                    0.1 * (1.3 * t).sin(),
                    0.3 * (0.5 * t).sin(),
                ),
            )
        })
    }

    /// Sensor motions between stamps 0.2 s apart whose clock reads `true + offset_ns`, with
    /// 0.01° / 3 mm of matching noise.
    fn timed_motions(x: &Isometry3<f64>, offset_ns: i64, seed: u64) -> Vec<TimedMotion> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        (0..280)
            .map(|k| {
                let from_ns = 1_000_000_000 + k * 200_000_000;
                let to_ns = from_ns + 200_000_000;
                let b = wavy_body(from_ns - offset_ns).expect("inside").inverse()
                    * wavy_body(to_ns - offset_ns).expect("inside");
                let mut u = || rng.random_range(-1.0..1.0);
                let noise = Isometry3::new(
                    Vector3::new(u(), u(), u()) * 0.003,
                    Vector3::new(u(), u(), u()) * 0.01f64.to_radians(),
                );
                TimedMotion { from_ns, to_ns, sensor_motion: x.inverse() * b * x * noise }
            })
            .collect()
    }

    #[test]
    fn time_offset_is_recovered_from_angular_acceleration() {
        let x = truth();
        for (offset_ns, seed) in [(2_500_000i64, 1u64), (-7_300_000, 2), (0, 3)] {
            let motions = timed_motions(&x, offset_ns, seed);
            let r = time_offset(&motions, &wavy_body, 50_000_000).expect("time offset");
            eprintln!("true {offset_ns} ns: found {} ± {:.0} ns", r.offset_ns, r.sigma_ns);
            assert!((r.offset_ns - offset_ns).abs() < 300_000, "{} vs {offset_ns}", r.offset_ns);
            // The reported σ is honest to within a factor of a few.
            assert!((r.offset_ns - offset_ns).abs() as f64 <= 4.0 * r.sigma_ns + 50_000.0, "{r:?}");
        }
    }

    #[test]
    fn time_offset_refuses_a_search_beyond_the_trajectory() {
        let motions = timed_motions(&truth(), 0, 4);
        // ±30 s leaves no motion with body poses at every candidate time.
        assert!(time_offset(&motions, &wavy_body, 30_000_000_000).is_err());
        assert!(time_offset(&motions[..5], &wavy_body, 10_000_000).is_err());
    }

    #[test]
    fn hand_eye_covariance_covers_the_error() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(29);
        let x = truth();
        let poses = drive(true, &mut rng);
        let ps = pairs(&poses, &x, &mut rng);
        let prior = Isometry3::from_parts(
            Translation3::new(1.2, 0.1, 1.8),
            UnitQuaternion::from_euler_angles(0.0, 0.0, 89.0f64.to_radians()),
        );
        let r = hand_eye(&ps, &prior).expect("hand-eye");
        let cov = hand_eye_covariance(&ps, &prior, &r, 40, 7, 1.0).expect("covariance");
        let again = hand_eye_covariance(&ps, &prior, &r, 40, 7, 1.0).expect("covariance");
        assert_eq!(cov, again, "seeded: deterministic");
        let dt = r.body_from_sensor.translation.vector - x.translation.vector;
        for k in 0..3 {
            let sd = cov[(k, k)].sqrt();
            assert!(sd > 0.0 && sd < 0.01, "translation σ {sd}");
            assert!(dt[k].abs() < 5.0 * sd + 1e-3, "axis {k}: error {} vs σ {sd}", dt[k]);
        }
    }

    #[test]
    fn too_few_or_broken_pairs_are_refused() {
        let i = Isometry3::identity();
        assert!(hand_eye(&[(i, i)], &i).is_err());
        let mut bad = i;
        bad.translation.vector.x = f64::NAN;
        assert!(hand_eye(&[(i, i), (i, i), (bad, i)], &i).is_err());
    }
}
