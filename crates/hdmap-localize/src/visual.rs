//! Camera-only localization against the visual layer (hdmap-features' kapture).
//!
//! Per query image: the image's features (the layer's own extractor) matched by Hamming
//! distance against every descriptor of the map points near a coarse prior, guided by it (a
//! feature meets only points whose direction from the prior is within `prior_gate_deg` of its
//! ray) with a ratio test between distinct points; then PnP in RANSAC — SQPnP (Terzakis &
//! Lourakis 2020, `sqpnp_simple`) on three random matches, inliers by reprojection error in
//! pixels through the lens model, adaptive stopping — and Gauss–Newton with Huber weights on
//! the inliers. The prior (GNSS/INS, metres off) only chooses and gates candidates, the
//! retrieval step of a kapture/Aachen pipeline; the pose comes from the image alone.

use hdmap_core::CameraIntrinsics;
use hdmap_core::nalgebra::{
    Isometry3, Matrix2x3, Matrix6, Point3, Rotation3, Translation3, Vector3, Vector6,
};
use hdmap_core::pose::{exp_se3, skew};
use hdmap_features::visual::{Feature, PointDescriptors, hamming};
use rand::{Rng, SeedableRng};
use rayon::prelude::*;

use crate::LocalizeError;

/// Settings of camera localization.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VisualLocalizeConfig {
    /// Map points farther than this from the prior camera position are not candidates, m.
    pub search_radius_m: f64,
    /// Guided matching: a feature is compared only with map points whose direction from the
    /// prior pose is within this angle of its viewing ray, degrees (≥ 180: every candidate).
    /// It should cover the prior's error: 2 m off at 10 m depth is 11°.
    pub prior_gate_deg: f64,
    /// Largest Hamming distance of a match.
    pub max_hamming: u32,
    /// Nearest over second-nearest (another point) distance above which a match is ambiguous.
    pub ratio: f64,
    /// Reprojection error of an inlier, px.
    pub inlier_px: f64,
    /// RANSAC iterations at most.
    pub max_iterations: usize,
    /// RANSAC stops once this confidence of having drawn an all-inlier sample is reached.
    pub confidence: f64,
    /// Fewer inliers: the image is not localized.
    pub min_inliers: usize,
    /// Seed of the RANSAC samples (mixed with each image's stamp).
    pub seed: u64,
}

impl Default for VisualLocalizeConfig {
    fn default() -> Self {
        Self {
            search_radius_m: 100.0,
            prior_gate_deg: 10.0,
            max_hamming: 50,
            ratio: 0.8,
            inlier_px: 4.0,
            max_iterations: 20000,
            confidence: 0.9999,
            min_inliers: 15,
            seed: 17,
        }
    }
}

impl VisualLocalizeConfig {
    /// Checks ranges.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.search_radius_m > 0.0
            && self.prior_gate_deg > 0.0
            && self.max_hamming <= 256
            && self.ratio > 0.0
            && self.ratio <= 1.0
            && self.inlier_px > 0.0
            && self.max_iterations > 0
            && self.confidence > 0.0
            && self.confidence < 1.0
            && self.min_inliers >= 4)
        {
            return Err(format!(
                "visual localize: need search_radius_m > 0, max_hamming ≤ 256, ratio in (0, 1], inlier_px > 0, \
                 max_iterations > 0, confidence in (0, 1) and min_inliers ≥ 4 (got {self:?})"
            ));
        }
        Ok(())
    }
}

/// One query image.
#[derive(Debug, Clone)]
pub struct QueryImage {
    /// Exposure stamp, ns.
    pub stamp_ns: i64,
    /// Its features ([`hdmap_features::visual::extract`] with the layer's settings,
    /// `PointDescriptors::settings`).
    pub features: Vec<Feature>,
    /// Coarse `map_from_camera` (GNSS/INS and the nominal rig), used to pick candidate points.
    pub prior_map_from_camera: Isometry3<f64>,
}

/// The result for one image.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CameraFix {
    /// Exposure stamp, ns.
    pub stamp_ns: i64,
    /// `map_from_camera` when localized.
    #[serde(skip)]
    pub map_from_camera: Option<Isometry3<f64>>,
    /// Candidate map points (near the prior, in front of it).
    pub candidates: usize,
    /// Matches that passed the ratio test.
    pub matches: usize,
    /// RANSAC inliers after refinement.
    pub inliers: usize,
}

/// Matches per RANSAC sample (SQPnP's minimum). Three matches can have up to four exact
/// poses and SQPnP returns one, so an all-inlier sample is not always a right pose: the
/// adaptive stop's confidence is nominal, and the iteration cap keeps sampling when the
/// inlier share is low. Three beat four on the held-out drives (more all-inlier draws).
const SAMPLE: usize = 3;

/// A 2D–3D correspondence: map point, observed pixel, its normalised undistorted ray.
struct Corr {
    x: Vector3<f64>,
    px: [f64; 2],
    n: [f64; 2],
}

/// Localizes every query image against the map points; images are independent (no tracking).
pub fn localize_images(
    map: &PointDescriptors,
    intrinsics: &CameraIntrinsics,
    queries: &[QueryImage],
    cfg: &VisualLocalizeConfig,
) -> Result<Vec<CameraFix>, LocalizeError> {
    cfg.validate().map_err(LocalizeError::Config)?;
    if map.xyz.is_empty() {
        return Err(LocalizeError::Input("the visual map holds no points".into()));
    }
    Ok(queries.par_iter().map(|q| localize_one(map, intrinsics, q, cfg)).collect())
}

fn localize_one(
    map: &PointDescriptors,
    k: &CameraIntrinsics,
    q: &QueryImage,
    cfg: &VisualLocalizeConfig,
) -> CameraFix {
    let prior_c_w = q.prior_map_from_camera.inverse();
    let centre = q.prior_map_from_camera.translation.vector;
    // Candidates: near the prior and inside its (widened) view.
    let (hw, hh) = (k.width as f64 / k.fx, k.height as f64 / k.fy);
    let candidate: Vec<bool> = map
        .xyz
        .iter()
        .map(|p| {
            let x = Vector3::new(p[0], p[1], p[2]);
            if (x - centre).norm() > cfg.search_radius_m {
                return false;
            }
            let c = prior_c_w * Point3::from(x);
            c.z > 0.3 && (c.x / c.z).abs() < hw && (c.y / c.z).abs() < hh
        })
        .collect();
    let descs: Vec<&(u32, [u8; 32])> =
        map.descriptors.iter().filter(|(p, _)| candidate[*p as usize]).collect();
    // Unit directions of the candidates from the prior camera, for guided matching.
    let gate_cos = cfg.prior_gate_deg.min(180.0).to_radians().cos();
    let dirs: Vec<Vector3<f64>> = descs
        .iter()
        .map(|(p, _)| {
            let x = map.xyz[*p as usize];
            (prior_c_w * Point3::new(x[0], x[1], x[2])).coords.normalize()
        })
        .collect();
    let n_candidates = candidate.iter().filter(|c| **c).count();
    let mut fix = CameraFix {
        stamp_ns: q.stamp_ns,
        map_from_camera: None,
        candidates: n_candidates,
        matches: 0,
        inliers: 0,
    };
    // Matching: best point and the best distance of any other point.
    // (point, Hamming distance, correspondence); a point keeps only its best feature, so a
    // sample never holds one point twice.
    let mut found: Vec<(u32, u32, Corr)> = Vec::new();
    for f in &q.features {
        let n = k.undistort(f.x as f64, f.y as f64);
        let ray = Vector3::new(n[0], n[1], 1.0).normalize();
        let (mut d1, mut p1, mut d2) = (u32::MAX, u32::MAX, u32::MAX);
        for ((p, d), dir) in descs.iter().zip(&dirs) {
            if gate_cos > -1.0 && ray.dot(dir) < gate_cos {
                continue;
            }
            let h = hamming(&f.descriptor, d);
            if *p == p1 {
                d1 = d1.min(h);
            } else if h < d1 {
                (d2, d1, p1) = (d1, h, *p);
            } else if h < d2 {
                d2 = h;
            }
        }
        if p1 != u32::MAX && d1 <= cfg.max_hamming && (d2 == u32::MAX || (d1 as f64) < cfg.ratio * d2 as f64)
        {
            let x = map.xyz[p1 as usize];
            found.push((p1, d1, Corr { x: Vector3::new(x[0], x[1], x[2]), px: [f.x as f64, f.y as f64], n }));
        }
    }
    found.sort_by_key(|(p, d, _)| (*p, *d));
    found.dedup_by_key(|(p, _, _)| *p);
    let corr: Vec<Corr> = found.into_iter().map(|(_, _, c)| c).collect();
    fix.matches = corr.len();
    if corr.len() < cfg.min_inliers {
        return fix;
    }
    // RANSAC; points are centred on the prior camera for SQPnP's conditioning.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(
        cfg.seed ^ (q.stamp_ns as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
    );
    let (mut best, mut best_pose) = (Vec::new(), None);
    let mut needed = cfg.max_iterations;
    let mut it = 0;
    while it < needed.min(cfg.max_iterations) {
        it += 1;
        let mut s = [0usize; SAMPLE];
        for i in 0..SAMPLE {
            loop {
                let c = rng.random_range(0..corr.len());
                if !s[..i].contains(&c) {
                    s[i] = c;
                    break;
                }
            }
        }
        let p3: Vec<(f64, f64, f64)> =
            s.iter().map(|&i| corr[i].x - centre).map(|v| (v.x, v.y, v.z)).collect();
        let p2: Vec<(f64, f64)> = s.iter().map(|&i| (corr[i].n[0], corr[i].n[1])).collect();
        let Some((r, t)) = sqpnp_simple::sqpnp_solve(&p3, &p2) else { continue };
        let rot = Rotation3::from_scaled_axis(Vector3::new(r.0, r.1, r.2));
        let c_w =
            Isometry3::from_parts(Translation3::new(t.0, t.1, t.2), rot.into()) * Translation3::from(-centre);
        let inl = inliers(&corr, k, &c_w, cfg.inlier_px);
        if inl.len() > best.len() {
            let w = inl.len() as f64 / corr.len() as f64;
            let miss = 1.0 - w.powi(SAMPLE as i32);
            needed = if miss <= 0.0 {
                it
            } else {
                ((1.0 - cfg.confidence).ln() / miss.ln()).ceil().clamp(1.0, cfg.max_iterations as f64)
                    as usize
            };
            best = inl;
            best_pose = Some(c_w);
        }
    }
    let Some(mut c_w) = best_pose else { return fix };
    if best.len() < cfg.min_inliers {
        return fix;
    }
    for _ in 0..2 {
        c_w = refine(&corr, &best, k, c_w);
        best = inliers(&corr, k, &c_w, cfg.inlier_px);
    }
    fix.inliers = best.len();
    if best.len() >= cfg.min_inliers {
        fix.map_from_camera = Some(c_w.inverse());
    }
    fix
}

/// Indices of correspondences that reproject within `tol_px`.
fn inliers(corr: &[Corr], k: &CameraIntrinsics, c_w: &Isometry3<f64>, tol_px: f64) -> Vec<usize> {
    corr.iter()
        .enumerate()
        .filter(|(_, c)| {
            let p = c_w * Point3::from(c.x);
            p.z > 0.1 && k.project(&p.coords).is_some_and(|[u, v]| (u - c.px[0]).hypot(v - c.px[1]) <= tol_px)
        })
        .map(|(i, _)| i)
        .collect()
}

/// Gauss–Newton on SE(3) (left perturbation of `camera_from_world`) over the normalised
/// reprojection errors of `idx`, Huber weights at a pixel.
fn refine(corr: &[Corr], idx: &[usize], k: &CameraIntrinsics, mut c_w: Isometry3<f64>) -> Isometry3<f64> {
    let huber = 1.0 / k.fx.min(k.fy);
    for _ in 0..10 {
        let mut h = Matrix6::zeros();
        let mut g = Vector6::zeros();
        for &i in idx {
            let c = &corr[i];
            let p = c_w * Point3::from(c.x);
            if p.z <= 0.1 {
                continue;
            }
            let iz = 1.0 / p.z;
            let r = [p.x * iz - c.n[0], p.y * iz - c.n[1]];
            let e = r[0].hypot(r[1]);
            let w = if e <= huber { 1.0 } else { huber / e };
            let dr_dp = Matrix2x3::new(iz, 0.0, -p.x * iz * iz, 0.0, iz, -p.y * iz * iz);
            let mut dp = hdmap_core::nalgebra::Matrix3x6::zeros();
            dp.fixed_view_mut::<3, 3>(0, 0).copy_from(&(-skew(&p.coords)));
            dp.fixed_view_mut::<3, 3>(0, 3).copy_from(&hdmap_core::nalgebra::Matrix3::identity());
            let j = dr_dp * dp;
            let rv = hdmap_core::nalgebra::Vector2::new(r[0], r[1]);
            h += w * j.transpose() * j;
            g += w * j.transpose() * rv;
        }
        let Some(step) = h.cholesky().map(|ch| ch.solve(&(-g))) else { break };
        c_w = exp_se3(&step) * c_w;
        if step.norm() < 1e-10 {
            break;
        }
    }
    c_w
}

/// Recall of camera poses at (position, rotation) thresholds.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Recall {
    /// Images scored.
    pub images: usize,
    /// Images localized (enough inliers).
    pub localized: usize,
    /// (threshold m, threshold °, share of all images within both).
    pub at: Vec<(f64, f64, f64)>,
    /// Median position error of localized images, m.
    pub median_m: f64,
    /// Median rotation error of localized images, degrees.
    pub median_deg: f64,
}

/// The kapture/Aachen thresholds: (0.25 m, 2°), (0.5 m, 5°), (5 m, 10°).
pub const AACHEN_THRESHOLDS: [(f64, f64); 3] = [(0.25, 2.0), (0.5, 5.0), (5.0, 10.0)];

/// Scores fixes against true `map_from_camera` poses (same order); images that did not
/// localize count as misses.
pub fn recall(fixes: &[CameraFix], truth: &[Isometry3<f64>], thresholds: &[(f64, f64)]) -> Recall {
    let errs: Vec<Option<(f64, f64)>> = fixes
        .iter()
        .zip(truth)
        .map(|(f, t)| {
            f.map_from_camera.map(|e| {
                let d = (e.translation.vector - t.translation.vector).norm();
                let r = (e.rotation.inverse() * t.rotation).angle().to_degrees();
                (d, r)
            })
        })
        .collect();
    let n = errs.len();
    let at = thresholds
        .iter()
        .map(|&(m, deg)| {
            let k = errs.iter().flatten().filter(|(d, r)| *d <= m && *r <= deg).count();
            (m, deg, k as f64 / n.max(1) as f64)
        })
        .collect();
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        if v.is_empty() { f64::NAN } else { v[v.len() / 2] }
    };
    Recall {
        images: n,
        localized: errs.iter().flatten().count(),
        at,
        median_m: median(errs.iter().flatten().map(|e| e.0).collect()),
        median_deg: median(errs.iter().flatten().map(|e| e.1).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdmap_core::Distortion;
    use hdmap_core::nalgebra::UnitQuaternion;

    fn camera() -> CameraIntrinsics {
        CameraIntrinsics {
            width: 1280,
            height: 720,
            fx: 900.0,
            fy: 900.0,
            cx: 640.0,
            cy: 360.0,
            distortion: Distortion::BrownConrady { k1: -0.1, k2: 0.05, p1: 0.0, p2: 0.0, k3: 0.0 },
        }
    }

    /// A map of random points with random descriptors, and a query that sees them from a known
    /// pose with pixel noise and 40 % wrong matches: the pose is recovered.
    #[test]
    fn ransac_pnp_recovers_a_known_pose_with_outliers() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let k = camera();
        let map_from_camera = Isometry3::from_parts(
            Translation3::new(12.0, -3.0, 1.6),
            UnitQuaternion::from_euler_angles(-1.58, 0.02, -1.5),
        );
        let (mut xyz, mut descriptors, mut features) = (Vec::new(), Vec::new(), Vec::new());
        while xyz.len() < 400 {
            let pc = Vector3::new(
                rng.random_range(-15.0..15.0),
                rng.random_range(-6.0..3.0),
                rng.random_range(4.0..60.0),
            );
            let Some([u, v]) = k.project(&pc) else { continue };
            if !(20.0..1260.0).contains(&u) || !(20.0..700.0).contains(&v) {
                continue;
            }
            let x = map_from_camera * Point3::from(pc);
            let d: [u8; 32] = rng.random();
            let i = xyz.len() as u32;
            xyz.push([x.x, x.y, x.z]);
            descriptors.push((i, d));
            // 60 % of the features are the point's own (a few bits flipped, half a pixel of
            // noise); 40 % carry the descriptor of a point elsewhere in the image.
            let (fu, fv) = if i % 5 < 3 {
                (u + rng.random_range(-0.5..0.5), v + rng.random_range(-0.5..0.5))
            } else {
                (rng.random_range(20.0..1260.0), rng.random_range(20.0..700.0))
            };
            let mut fd = d;
            fd[0] ^= 0b101;
            features.push(Feature { x: fu as f32, y: fv as f32, level: 0, grey: 0, descriptor: fd });
        }
        let origin = hdmap_core::GeoOrigin::new(5186, [0.0; 3], hdmap_core::VerticalDatum::Ellipsoidal)
            .expect("origin");
        let map = PointDescriptors { origin, xyz, descriptors, settings: Default::default() };
        let prior = map_from_camera * Isometry3::translation(1.5, -0.8, 0.4);
        let q = QueryImage { stamp_ns: 1, features, prior_map_from_camera: prior };
        let fixes = localize_images(&map, &k, &[q], &VisualLocalizeConfig::default()).expect("run");
        let got = fixes[0].map_from_camera.expect("localized");
        let d = (got.translation.vector - map_from_camera.translation.vector).norm();
        let r = (got.rotation.inverse() * map_from_camera.rotation).angle().to_degrees();
        assert!(d < 0.03 && r < 0.05, "{d} m, {r}°");
        assert!((fixes[0].inliers as f64 - 240.0).abs() < 15.0, "{} inliers", fixes[0].inliers);
        let rc = recall(&fixes, &[map_from_camera], &AACHEN_THRESHOLDS);
        assert_eq!(rc.at[0].2, 1.0);
    }
}
