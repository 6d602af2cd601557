//! Hand–eye calibration from motion: a sensor's motions (e.g. LiDAR scan matching) and the
//! body's motions over the same intervals (e.g. the INS) give `body_from_sensor`.
//!
//! With `B = body_i_from_body_j`, `A = sensor_i_from_sensor_j` and `X = body_from_sensor`,
//! every pair satisfies `B·X = X·A`: rotation axes map as `axis(B) = R_X·axis(A)` and
//! translations as `(R_B − I)·t_X = R_X·t_A − t_B`. A vehicle driving on a plane turns about one
//! axis only, which leaves the rotation about it to the translation equations (straight driving:
//! `t_B ≈ R_X·t_A`) and the lever arm along it unobservable: such directions are reported and
//! held at the prior instead of being invented.

use hdmap_core::nalgebra::{Isometry3, Matrix3, Rotation3, Translation3, UnitQuaternion, Vector3};

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

    #[test]
    fn too_few_or_broken_pairs_are_refused() {
        let i = Isometry3::identity();
        assert!(hand_eye(&[(i, i)], &i).is_err());
        let mut bad = i;
        bad.translation.vector.x = f64::NAN;
        assert!(hand_eye(&[(i, i), (i, i), (bad, i)], &i).is_err());
    }
}
