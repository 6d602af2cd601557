//! Camera intrinsics from chessboard views: Zhang's closed-form initialisation, then
//! Levenberg–Marquardt refinement of intrinsics, distortion and every view's pose (the
//! `levenberg-marquardt` crate), outlier-view rejection, RMS reprojection error (OpenCV's
//! definition: √(Σ‖e‖² / points)) and parameter standard deviations from (JᵀJ)⁻¹σ².

use hdmap_core::nalgebra::{DMatrix, Matrix3, Rotation3, UnitQuaternion, Vector3};
use hdmap_core::{CameraIntrinsics, Distortion};
use levenberg_marquardt::{LeastSquaresProblem, LevenbergMarquardt};
use nalgebra034 as na;
use serde::Serialize;

use crate::CalibError;

/// Which lens model to fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LensModel {
    /// Pinhole + Brown–Conrady (k1 k2 p1 p2 k3).
    Pinhole,
    /// Equidistant fisheye (k1..k4).
    Fisheye,
}

/// One view: object points (board plane, z = 0, metres) and their detected pixels.
#[derive(Debug, Clone)]
pub struct View {
    /// Name for reports (file name).
    pub name: String,
    /// Object points (X, Y) on the board, metres.
    pub object: Vec<[f64; 2]>,
    /// Detected pixels.
    pub image: Vec<[f64; 2]>,
}

/// Result of an intrinsics calibration.
#[derive(Debug, Clone, Serialize)]
pub struct IntrinsicsResult {
    /// The intrinsics.
    pub intrinsics: CameraIntrinsics,
    /// RMS reprojection error over the used views, px.
    pub rms_px: f64,
    /// Per used view: (name, RMS px).
    pub per_view_rms_px: Vec<(String, f64)>,
    /// Views rejected as outliers (name, RMS px before rejection).
    pub rejected: Vec<(String, f64)>,
    /// Standard deviations of fx, fy, cx, cy, then the distortion coefficients.
    pub std_dev: Vec<f64>,
    /// `camera_from_board` of every used view.
    #[serde(skip)]
    pub poses: Vec<hdmap_core::nalgebra::Isometry3<f64>>,
}

fn normalize_points(p: &[[f64; 2]]) -> ([[f64; 2]; 1], Matrix3<f64>) {
    let n = p.len() as f64;
    let (mx, my) = (p.iter().map(|q| q[0]).sum::<f64>() / n, p.iter().map(|q| q[1]).sum::<f64>() / n);
    let d = p.iter().map(|q| (q[0] - mx).hypot(q[1] - my)).sum::<f64>() / n;
    let s = std::f64::consts::SQRT_2 / d.max(1e-12);
    ([[mx, my]], Matrix3::new(s, 0.0, -s * mx, 0.0, s, -s * my, 0.0, 0.0, 1.0))
}

/// Homography mapping board (X, Y, 1) to pixels, by normalised DLT.
pub fn homography(object: &[[f64; 2]], image: &[[f64; 2]]) -> Option<Matrix3<f64>> {
    let (_, to) = normalize_points(object);
    let (_, ti) = normalize_points(image);
    let n = object.len();
    let mut a = DMatrix::<f64>::zeros(2 * n, 9);
    for k in 0..n {
        let o = to * Vector3::new(object[k][0], object[k][1], 1.0);
        let i = ti * Vector3::new(image[k][0], image[k][1], 1.0);
        let (x, y, u, v) = (o.x, o.y, i.x, i.y);
        let r1 = [-x, -y, -1.0, 0.0, 0.0, 0.0, u * x, u * y, u];
        let r2 = [0.0, 0.0, 0.0, -x, -y, -1.0, v * x, v * y, v];
        for c in 0..9 {
            a[(2 * k, c)] = r1[c];
            a[(2 * k + 1, c)] = r2[c];
        }
    }
    let ata = a.transpose() * &a;
    let eig = ata.symmetric_eigen();
    let (imin, _) = eig.eigenvalues.iter().enumerate().min_by(|x, y| x.1.total_cmp(y.1))?;
    let h = eig.eigenvectors.column(imin);
    let hn = Matrix3::new(h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7], h[8]);
    let hm = ti.try_inverse()? * hn * to;
    Some(hm / hm[(2, 2)])
}

/// Zhang's closed-form intrinsics (zero skew) from homographies.
pub fn zhang(hs: &[Matrix3<f64>]) -> Option<(f64, f64, f64, f64)> {
    let v = |h: &Matrix3<f64>, i: usize, j: usize| {
        let (hi, hj) = (h.column(i), h.column(j));
        [
            hi[0] * hj[0],
            hi[0] * hj[1] + hi[1] * hj[0],
            hi[1] * hj[1],
            hi[2] * hj[0] + hi[0] * hj[2],
            hi[2] * hj[1] + hi[1] * hj[2],
            hi[2] * hj[2],
        ]
    };
    let mut m = DMatrix::<f64>::zeros(2 * hs.len(), 6);
    for (k, h) in hs.iter().enumerate() {
        let v12 = v(h, 0, 1);
        let (v11, v22) = (v(h, 0, 0), v(h, 1, 1));
        for c in 0..6 {
            m[(2 * k, c)] = v12[c];
            m[(2 * k + 1, c)] = v11[c] - v22[c];
        }
    }
    let eig = (m.transpose() * &m).symmetric_eigen();
    let (imin, _) = eig.eigenvalues.iter().enumerate().min_by(|x, y| x.1.total_cmp(y.1))?;
    let mut b: Vec<f64> = eig.eigenvectors.column(imin).iter().copied().collect();
    if b[0] < 0.0 {
        b.iter_mut().for_each(|x| *x = -*x);
    }
    let (b11, b12, b22, b13, b23, b33) = (b[0], b[1], b[2], b[3], b[4], b[5]);
    let den = b11 * b22 - b12 * b12;
    let v0 = (b12 * b13 - b11 * b23) / den;
    let lambda = b33 - (b13 * b13 + v0 * (b12 * b13 - b11 * b23)) / b11;
    let alpha = (lambda / b11).sqrt();
    let beta = (lambda * b11 / den).sqrt();
    let gamma = -b12 * alpha * alpha * beta / lambda;
    let u0 = gamma * v0 / beta - b13 * alpha * alpha / lambda;
    (alpha.is_finite() && beta.is_finite() && u0.is_finite() && v0.is_finite())
        .then_some((alpha, beta, u0, v0))
}

/// Board pose from a homography and K.
fn pose_from_h(h: &Matrix3<f64>, k: &Matrix3<f64>) -> Option<(Vector3<f64>, Vector3<f64>)> {
    let ki = k.try_inverse()?;
    let m = ki * h;
    let lam = 1.0 / m.column(0).norm();
    let r1 = m.column(0) * lam;
    let r2 = m.column(1) * lam;
    let r3 = r1.cross(&r2);
    let t = m.column(2) * lam;
    let r = Matrix3::from_columns(&[r1, r2, r3]);
    let svd = r.svd(true, true);
    let rot = svd.u? * svd.v_t?;
    let rot = if rot.determinant() < 0.0 { -rot } else { rot };
    let (rot, t) = if t.z < 0.0 {
        (
            Matrix3::from_columns(&[
                -rot.column(0).into_owned(),
                -rot.column(1).into_owned(),
                rot.column(2).into_owned(),
            ]),
            -t,
        )
    } else {
        (rot, t)
    };
    let q = UnitQuaternion::from_rotation_matrix(&Rotation3::from_matrix_unchecked(rot));
    Some((q.scaled_axis(), t))
}

struct Problem<'a> {
    views: &'a [View],
    model: LensModel,
    width: u32,
    height: u32,
    params: Vec<f64>,
}

fn n_dist(model: LensModel) -> usize {
    match model {
        LensModel::Pinhole => 5,
        LensModel::Fisheye => 4,
    }
}

impl Problem<'_> {
    fn intr(&self, p: &[f64]) -> CameraIntrinsics {
        let d = &p[4..4 + n_dist(self.model)];
        let distortion = match self.model {
            LensModel::Pinhole => {
                Distortion::BrownConrady { k1: d[0], k2: d[1], p1: d[2], p2: d[3], k3: d[4] }
            }
            LensModel::Fisheye => Distortion::KannalaBrandt { k1: d[0], k2: d[1], k3: d[2], k4: d[3] },
        };
        CameraIntrinsics {
            width: self.width,
            height: self.height,
            fx: p[0],
            fy: p[1],
            cx: p[2],
            cy: p[3],
            distortion,
        }
    }

    fn view_residuals(&self, p: &[f64], cam: &CameraIntrinsics, v: usize, out: &mut [f64]) {
        let base = 4 + n_dist(self.model) + 6 * v;
        let r = UnitQuaternion::from_scaled_axis(Vector3::new(p[base], p[base + 1], p[base + 2]));
        let t = Vector3::new(p[base + 3], p[base + 4], p[base + 5]);
        let view = &self.views[v];
        for (k, (o, im)) in view.object.iter().zip(&view.image).enumerate() {
            let pc = r * Vector3::new(o[0], o[1], 0.0) + t;
            match cam.project(&pc) {
                Some(px) => {
                    out[2 * k] = px[0] - im[0];
                    out[2 * k + 1] = px[1] - im[1];
                }
                None => {
                    out[2 * k] = 1e3;
                    out[2 * k + 1] = 1e3;
                }
            }
        }
    }

    fn all_residuals(&self, p: &[f64]) -> Vec<f64> {
        let cam = self.intr(p);
        let mut out = Vec::new();
        for v in 0..self.views.len() {
            let mut r = vec![0.0; 2 * self.views[v].object.len()];
            self.view_residuals(p, &cam, v, &mut r);
            out.extend(r);
        }
        out
    }
}

impl LeastSquaresProblem<f64, na::Dyn, na::Dyn> for Problem<'_> {
    type ResidualStorage = na::VecStorage<f64, na::Dyn, na::U1>;
    type JacobianStorage = na::VecStorage<f64, na::Dyn, na::Dyn>;
    type ParameterStorage = na::VecStorage<f64, na::Dyn, na::U1>;

    fn set_params(&mut self, x: &na::DVector<f64>) {
        self.params = x.iter().copied().collect();
    }

    fn params(&self) -> na::DVector<f64> {
        na::DVector::from_vec(self.params.clone())
    }

    fn residuals(&self) -> Option<na::DVector<f64>> {
        Some(na::DVector::from_vec(self.all_residuals(&self.params)))
    }

    fn jacobian(&self) -> Option<na::DMatrix<f64>> {
        // Central differences; a view's pose only moves that view's residuals.
        let p = &self.params;
        let offsets: Vec<usize> = self
            .views
            .iter()
            .scan(0, |acc, v| {
                let o = *acc;
                *acc += 2 * v.object.len();
                Some(o)
            })
            .collect();
        let m: usize = self.views.iter().map(|v| 2 * v.object.len()).sum();
        let n = p.len();
        let nin = 4 + n_dist(self.model);
        let mut jac = na::DMatrix::<f64>::zeros(m, n);
        for c in 0..nin {
            let h = 1e-6 * p[c].abs().max(1e-3);
            let (mut a, mut b) = (p.clone(), p.clone());
            a[c] += h;
            b[c] -= h;
            let (ra, rb) = (self.all_residuals(&a), self.all_residuals(&b));
            for r in 0..m {
                jac[(r, c)] = (ra[r] - rb[r]) / (2.0 * h);
            }
        }
        let cam = self.intr(p);
        for (v, view) in self.views.iter().enumerate() {
            let len = 2 * view.object.len();
            for k in 0..6 {
                let c = nin + 6 * v + k;
                let h = 1e-7 * p[c].abs().max(1e-2);
                let (mut a, mut b) = (p.clone(), p.clone());
                a[c] += h;
                b[c] -= h;
                let (mut ra, mut rb) = (vec![0.0; len], vec![0.0; len]);
                self.view_residuals(&a, &cam, v, &mut ra);
                self.view_residuals(&b, &cam, v, &mut rb);
                for r in 0..len {
                    jac[(offsets[v] + r, c)] = (ra[r] - rb[r]) / (2.0 * h);
                }
            }
        }
        Some(jac)
    }
}

fn per_view_rms(problem: &Problem<'_>) -> Vec<f64> {
    let cam = problem.intr(&problem.params);
    (0..problem.views.len())
        .map(|v| {
            let mut r = vec![0.0; 2 * problem.views[v].object.len()];
            problem.view_residuals(&problem.params, &cam, v, &mut r);
            (r.chunks(2).map(|e| e[0] * e[0] + e[1] * e[1]).sum::<f64>() / (r.len() / 2) as f64).sqrt()
        })
        .collect()
}

fn solve(views: &[View], model: LensModel, width: u32, height: u32) -> Result<Problem<'_>, CalibError> {
    let hs: Vec<Matrix3<f64>> = views
        .iter()
        .map(|v| {
            homography(&v.object, &v.image)
                .ok_or_else(|| CalibError::Degenerate(format!("no homography for view {}", v.name)))
        })
        .collect::<Result<_, _>>()?;
    let (fx, fy, cx, cy) = zhang(&hs).ok_or_else(|| {
        CalibError::Degenerate("Zhang's initialisation failed (too few or coplanar views)".into())
    })?;
    let k = Matrix3::new(fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0);
    let mut params = vec![fx, fy, cx, cy];
    params.extend(std::iter::repeat_n(0.0, n_dist(model)));
    for (v, h) in views.iter().zip(&hs) {
        let (r, t) = pose_from_h(h, &k)
            .ok_or_else(|| CalibError::Degenerate(format!("no pose for view {}", v.name)))?;
        params.extend([r.x, r.y, r.z, t.x, t.y, t.z]);
    }
    let problem = Problem { views, model, width, height, params };
    let (problem, report) = LevenbergMarquardt::new().with_patience(200).minimize(problem);
    if !report.termination.was_successful() {
        tracing::warn!("LM ended with {:?}", report.termination);
    }
    Ok(problem)
}

/// Calibrates from views; views whose RMS exceeds `max(3 × median, 1 px)` are rejected once and
/// the calibration repeated without them.
pub fn calibrate(
    views: Vec<View>,
    model: LensModel,
    width: u32,
    height: u32,
) -> Result<IntrinsicsResult, CalibError> {
    if views.len() < 3 {
        return Err(CalibError::Degenerate(format!("{} usable views; need at least 3", views.len())));
    }
    let first = solve(&views, model, width, height)?;
    let rms = per_view_rms(&first);
    let mut sorted = rms.clone();
    sorted.sort_by(f64::total_cmp);
    let limit = (3.0 * sorted[sorted.len() / 2]).max(1.0);
    let keep: Vec<bool> = rms.iter().map(|r| *r <= limit).collect();
    let rejected: Vec<(String, f64)> = views
        .iter()
        .zip(&rms)
        .zip(&keep)
        .filter(|(_, k)| !**k)
        .map(|((v, r), _)| (v.name.clone(), *r))
        .collect();
    let kept: Vec<View> = views.iter().zip(&keep).filter(|(_, k)| **k).map(|(v, _)| v.clone()).collect();
    let problem =
        if rejected.is_empty() || kept.len() < 3 { first } else { solve(&kept, model, width, height)? };
    let used = problem.views;
    let res = problem.all_residuals(&problem.params);
    let npts = res.len() / 2;
    let sse: f64 = res.iter().map(|r| r * r).sum();
    let rms_px = (sse / npts as f64).sqrt();
    let jac = problem.jacobian().ok_or_else(|| CalibError::Degenerate("no Jacobian".into()))?;
    let jtj = jac.transpose() * &jac;
    let dof = (res.len() as f64 - problem.params.len() as f64).max(1.0);
    let sigma2 = sse / dof;
    let nin = 4 + n_dist(model);
    let std_dev = match jtj.try_inverse() {
        Some(inv) => (0..nin).map(|i| (inv[(i, i)] * sigma2).max(0.0).sqrt()).collect(),
        None => vec![f64::NAN; nin],
    };
    let per_view = per_view_rms(&problem);
    let intrinsics = problem.intr(&problem.params);
    let poses = (0..used.len())
        .map(|v| {
            let b = nin + 6 * v;
            let p = &problem.params;
            hdmap_core::nalgebra::Isometry3::new(
                Vector3::new(p[b + 3], p[b + 4], p[b + 5]),
                Vector3::new(p[b], p[b + 1], p[b + 2]),
            )
        })
        .collect();
    Ok(IntrinsicsResult {
        intrinsics,
        rms_px,
        per_view_rms_px: used.iter().map(|v| v.name.clone()).zip(per_view).collect(),
        rejected,
        std_dev,
        poses,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_known_intrinsics_from_synthetic_views() -> Result<(), CalibError> {
        let truth = CameraIntrinsics {
            width: 640,
            height: 480,
            fx: 540.0,
            fy: 538.0,
            cx: 330.0,
            cy: 242.0,
            distortion: Distortion::BrownConrady { k1: -0.25, k2: 0.08, p1: 0.001, p2: -0.0005, k3: 0.0 },
        };
        let object: Vec<[f64; 2]> =
            (0..6).flat_map(|j| (0..9).map(move |i| [i as f64 * 0.025, j as f64 * 0.025])).collect();
        let mut views = Vec::new();
        for (k, (rx, ry, rz, tx, ty, tz)) in [
            (0.1, 0.2, 0.0, -0.1, -0.06, 0.45),
            (-0.3, 0.1, 0.2, -0.08, -0.05, 0.4),
            (0.2, -0.35, -0.1, -0.12, -0.07, 0.5),
            (0.4, 0.3, 0.3, -0.1, -0.09, 0.42),
            (-0.2, -0.25, 0.05, -0.11, -0.02, 0.38),
        ]
        .into_iter()
        .enumerate()
        {
            let pose =
                hdmap_core::nalgebra::Isometry3::new(Vector3::new(tx, ty, tz), Vector3::new(rx, ry, rz));
            let image: Vec<[f64; 2]> = object
                .iter()
                .map(|o| {
                    truth
                        .project(&(pose * hdmap_core::nalgebra::Point3::new(o[0], o[1], 0.0)).coords)
                        .expect("visible")
                })
                .collect();
            views.push(View { name: format!("v{k}"), object: object.clone(), image });
        }
        let r = calibrate(views, LensModel::Pinhole, 640, 480)?;
        assert!(r.rms_px < 1e-6, "noise-free RMS {}", r.rms_px);
        let i = r.intrinsics;
        assert!(
            (i.fx - 540.0).abs() < 1e-3
                && (i.fy - 538.0).abs() < 1e-3
                && (i.cx - 330.0).abs() < 1e-3
                && (i.cy - 242.0).abs() < 1e-3,
            "{i:?}"
        );
        Ok(())
    }
}
