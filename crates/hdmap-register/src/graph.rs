//! The trajectory adjustment: a pose graph over `world_from_lidar` at each scan, solved with
//! factrs (Levenberg–Marquardt on SE(3), sparse Cholesky). We write the factors:
//! GNSS/INS priors with their covariances, scan-matching constraints (consecutive scans and
//! overlaps between passes), and paint constraints (a LiDAR marking point lies on its
//! layout line: lateral distance and height). Marginal covariances come from the inverse of
//! the Gauss–Newton information at the solution.

use factrs::containers::{Graph, Values, ValuesOrder};
use factrs::fac;
use factrs::linalg::{Const, ForwardProp, Matrix6, Numeric, Vector3, VectorX};
use factrs::noise::GaussianNoise;
use factrs::optimizers::{LevenMarquardt, OptError};
use factrs::residuals::{BetweenResidual, PriorResidual, Residual1};
use factrs::robust::Huber;
use factrs::traits::*;
use factrs::variables::{MatrixLieGroup, SE3, SO3};
use hdmap_core::nalgebra as na;

use crate::RegisterError;

mod symbols {
    #![allow(missing_docs)]
    use factrs::assign_symbols;
    use factrs::variables::SE3;
    assign_symbols!(X: SE3);
}
use symbols::X;

/// A paint observation: a marking point in the LiDAR frame lies at the layout's paint
/// height and, when it was seen off paint, on the nearest paint outline: residual =
/// (`n·(p − q)` horizontally or 0 for a point on paint, height above the paint).
#[derive(Clone, Debug)]
pub struct PaintResidual {
    p_lidar: Vector3,
    /// Nearest outline point and unit normal (graph-local), or `None` when on paint.
    edge: Option<([f64; 2], [f64; 2])>,
    z: f64,
}

#[factrs::mark]
impl Residual1 for PaintResidual {
    type Differ = ForwardProp<<Self as Residual1>::DimIn>;
    type V1 = SE3;
    type DimIn = Const<6>;
    type DimOut = Const<2>;

    fn residual1<T: Numeric>(&self, t: SE3<T>) -> VectorX<T> {
        let p = t.apply(self.p_lidar.cast::<T>().as_view());
        let horizontal = match self.edge {
            Some((q, n)) => (p[0] - T::from(q[0])) * T::from(n[0]) + (p[1] - T::from(q[1])) * T::from(n[1]),
            None => T::from(0.0),
        };
        VectorX::from_vec(vec![horizontal, p[2] - T::from(self.z)])
    }
}

/// Noise of a paint observation: horizontal (m), vertical (m).
pub const PAINT_SIGMA_M: (f64, f64) = (0.05, 0.05);

/// Converts a nalgebra pose to factrs.
pub fn to_se3(t: &na::Isometry3<f64>) -> SE3 {
    let q = t.rotation.quaternion();
    let rot = SO3::from_xyzw(q.i, q.j, q.k, q.w);
    let v = t.translation.vector;
    SE3::from_rot_trans(rot, Vector3::new(v.x, v.y, v.z))
}

/// Converts a factrs pose to nalgebra.
pub fn from_se3(t: &SE3) -> na::Isometry3<f64> {
    let q = &t.rot().xyzw;
    let uq = na::UnitQuaternion::from_quaternion(na::Quaternion::new(q[3], q[0], q[1], q[2]));
    let x = t.xyz();
    na::Isometry3::from_parts(na::Translation3::new(x[0], x[1], x[2]), uq)
}

fn noise6(cov_rot_first: &na::Matrix6<f64>) -> Result<GaussianNoise<6>, RegisterError> {
    let m = Matrix6::from_fn(|r, c| cov_rot_first[(r, c)]);
    GaussianNoise::<6>::from_matrix_cov(m.as_view())
        .ok_or_else(|| RegisterError::Solver("a covariance is not positive definite".into()))
}

/// The pose graph under construction (poses in graph-local world coordinates).
pub struct PoseGraph {
    graph: Graph,
    values: Values,
    n: usize,
}

impl std::fmt::Debug for PoseGraph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PoseGraph({} poses, {} factors)", self.n, self.graph.len())
    }
}

/// The solution.
#[derive(Debug, Clone)]
pub struct Solution {
    /// `world_local_from_lidar` per pose.
    pub poses: Vec<na::Isometry3<f64>>,
    /// Marginal covariance per pose (rotation first, body-frame perturbation `T·exp(δ)`).
    pub covariances: Vec<na::Matrix6<f64>>,
    /// Total cost before and after.
    pub cost: (f64, f64),
}

impl PoseGraph {
    /// A graph with initial values.
    pub fn new(initial: &[na::Isometry3<f64>]) -> Self {
        let mut values = Values::new();
        for (i, t) in initial.iter().enumerate() {
            values.insert(X(i as u32), to_se3(t));
        }
        Self { graph: Graph::new(), values, n: initial.len() }
    }

    /// A prior on pose `i` with its covariance (rotation first).
    pub fn prior(
        &mut self,
        i: usize,
        z: &na::Isometry3<f64>,
        cov: &na::Matrix6<f64>,
    ) -> Result<(), RegisterError> {
        let noise = noise6(cov)?;
        self.graph.add_factor(fac![PriorResidual::new(to_se3(z)), X(i as u32), noise]);
        Ok(())
    }

    /// A relative-pose constraint `i_from_j` with its covariance (rotation first), Huber-robust
    /// beyond 10 σ (a failed match must not hold a pose, a good one must not let go of it).
    pub fn between(
        &mut self,
        i: usize,
        j: usize,
        i_from_j: &na::Isometry3<f64>,
        cov: &na::Matrix6<f64>,
    ) -> Result<(), RegisterError> {
        let noise = noise6(cov)?;
        self.graph.add_factor(fac![
            BetweenResidual::new(to_se3(i_from_j)),
            (X(i as u32), X(j as u32)),
            noise,
            Huber::new(10.0)
        ]);
        Ok(())
    }

    /// A paint observation on pose `i`: the LiDAR point `p_lidar`, the nearest outline point
    /// and normal when it was off paint (graph-local), the paint height (Huber-robust: wrong
    /// associations are down-weighted).
    pub fn paint(&mut self, i: usize, p_lidar: [f64; 3], edge: Option<([f64; 2], [f64; 2])>, z: f64) {
        let r = PaintResidual { p_lidar: Vector3::new(p_lidar[0], p_lidar[1], p_lidar[2]), edge, z };
        let noise = GaussianNoise::<2>::from_diag_sigmas(PAINT_SIGMA_M.0, PAINT_SIGMA_M.1);
        self.graph.add_factor(fac![r, X(i as u32), noise, Huber::new(1.345)]);
    }

    /// Solves (LM) and computes marginal covariances.
    pub fn solve(self, max_iterations: usize) -> Result<Solution, RegisterError> {
        let cost0 = self.graph.error(&self.values);
        let mut params: factrs::optimizers::LevenParams = Default::default();
        params.base.max_iterations = max_iterations;
        let mut opt = LevenMarquardt::new(params, self.graph);
        let values = match opt.optimize(self.values) {
            Ok(v) | Err(OptError::MaxIterations(v)) => v,
            Err(e) => return Err(RegisterError::Solver(format!("{e:?}"))),
        };
        let graph = opt.graph();
        let cost1 = graph.error(&values);
        let mut poses = Vec::with_capacity(self.n);
        for i in 0..self.n {
            let t: &SE3 =
                values.get(X(i as u32)).ok_or_else(|| RegisterError::Solver(format!("pose {i} missing")))?;
            poses.push(from_se3(t));
        }
        let covariances = marginals(graph, &values, self.n)?;
        Ok(Solution { poses, covariances, cost: (cost0, cost1) })
    }
}

/// Diagonal 6×6 blocks of (JᵀJ)⁻¹ at the solution (J whitened and robust-weighted).
fn marginals(graph: &Graph, values: &Values, n: usize) -> Result<Vec<na::Matrix6<f64>>, RegisterError> {
    let order = ValuesOrder::from_values(values);
    let gorder = graph.sparsity_pattern(order);
    let lin = graph.linearize(values);
    let j = lin.residual_jacobian(&gorder).diff;
    let cols = j.ncols();
    // H = JᵀJ from the sparse columns: accumulate per row.
    let mut rows: Vec<Vec<(usize, f64)>> = vec![Vec::new(); j.nrows()];
    let jr = j.as_ref();
    for c in 0..cols {
        for (r, v) in jr.row_idx_of_col(c).zip(jr.val_of_col(c).iter()) {
            rows[r].push((c, *v));
        }
    }
    let mut h = na::DMatrix::<f64>::zeros(cols, cols);
    for row in &rows {
        for &(a, va) in row {
            for &(b, vb) in row {
                h[(a, b)] += va * vb;
            }
        }
    }
    let chol = na::linalg::Cholesky::new(h)
        .ok_or_else(|| RegisterError::Solver("information matrix not positive definite".into()))?;
    let inv = chol.inverse();
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let idx = gorder
            .order
            .get(X(i as u32))
            .ok_or_else(|| RegisterError::Solver(format!("pose {i} not ordered")))?
            .idx;
        out.push(na::Matrix6::from_fn(|r, c| inv[(idx + r, idx + c)]));
    }
    Ok(out)
}

/// Noise helper for callers: diagonal covariance (rotation sigmas rad, translation sigmas m).
pub fn diag_cov(rot_sigma: [f64; 3], trans_sigma: [f64; 3]) -> na::Matrix6<f64> {
    let mut c = na::Matrix6::zeros();
    for k in 0..3 {
        c[(k, k)] = rot_sigma[k] * rot_sigma[k];
        c[(k + 3, k + 3)] = trans_sigma[k] * trans_sigma[k];
    }
    c
}
