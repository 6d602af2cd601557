//! Generalized-ICP (Segal et al. 2009) with kd-tree correspondences (kiddo), per-point
//! plane-regularised covariances, a Huber kernel and Levenberg–Marquardt steps on SE(3),
//! the normal equations summed in parallel (rayon).
//!
//! Conventions follow small_gicp: [`align`] returns `target_from_source`, the transform that
//! maps source points onto the target. Internally both clouds are shifted by the target's
//! centroid so rotation updates are well conditioned for world (UTM) coordinates.

use hdmap_core::pose::{exp_se3, skew};
use kiddo::{ImmutableKdTree, SquaredEuclidean};

/// The kd-tree of a cloud: immutable, over f32 centred coordinates.
type Tree = ImmutableKdTree<f32, 3>;
use nalgebra::{Isometry3, Matrix3, Matrix6, Translation3, Vector3, Vector6};
use rayon::prelude::*;

use crate::RegisterError;

/// Settings of one registration.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GicpConfig {
    /// Correspondences farther apart than this are ignored, m.
    pub max_correspondence_m: f64,
    /// Neighbours used for each point's covariance.
    pub k_neighbours: usize,
    /// Iteration limit.
    pub max_iterations: usize,
    /// Huber kernel width on the Euclidean residual, m (`None`: plain least squares).
    pub huber_m: Option<f64>,
    /// Converged when the update is below this rotation (rad) ...
    pub rotation_eps_rad: f64,
    /// ... and this translation (m).
    pub translation_eps_m: f64,
}

impl Default for GicpConfig {
    fn default() -> Self {
        Self {
            max_correspondence_m: 1.0,
            k_neighbours: 20,
            max_iterations: 30,
            huber_m: Some(0.5),
            rotation_eps_rad: 0.1f64.to_radians() * 1e-2,
            translation_eps_m: 1e-4,
        }
    }
}

/// A cloud ready for GICP: points, their covariances and a kd-tree.
pub struct GicpCloud {
    /// Points (shifted by `shift` internally when aligned; stored absolute).
    pub points: Vec<[f64; 3]>,
    /// Plane-regularised covariance per point.
    pub covariances: Vec<Matrix3<f64>>,
    /// Tree over the centred points in f32 (metres around the centroid: µm resolution).
    tree: Tree,
    /// The centred f32 points the tree holds.
    local32: Vec<[f32; 3]>,
    /// The k nearest neighbours of every point (k per point, flat; a point is its own).
    neighbours: Vec<u32>,
    /// Squared distance from every point to its k-th nearest neighbour: every point closer
    /// than that is in its neighbour list.
    reach_sq: Vec<f32>,
    /// Neighbours per point.
    k: usize,
    /// Offset subtracted before building the tree (the cloud's centroid).
    shift: [f64; 3],
}

impl std::fmt::Debug for GicpCloud {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GicpCloud({} points)", self.points.len())
    }
}

/// Centroids of the points in each occupied voxel of size `voxel_size_m`, in voxel-key order
/// (deterministic).
pub fn voxel_downsample(points: &[[f64; 3]], voxel_size_m: f64) -> Vec<[f64; 3]> {
    if voxel_size_m <= 0.0 || points.is_empty() {
        return points.to_vec();
    }
    // Sum relative to the first point: keeps f64 sums of UTM coordinates exact enough.
    let base = points[0];
    // Voxel indices relative to the first point's voxel, packed 21 bits per axis (±262 km at
    // 0.25 m); the grid itself is the absolute one.
    let origin = base.map(|v| (v / voxel_size_m).floor() as i64);
    const HALF: i64 = 1 << 20;
    let mut keyed: Vec<(u64, u32)> = points
        .par_iter()
        .enumerate()
        .map(|(i, p)| {
            let k = [0, 1, 2].map(|a| {
                ((p[a] / voxel_size_m).floor() as i64 - origin[a] + HALF).clamp(0, 2 * HALF - 1) as u64
            });
            ((k[0] << 42) | (k[1] << 21) | k[2], i as u32)
        })
        .collect();
    keyed.par_sort_unstable();
    keyed
        .chunk_by(|a, b| a.0 == b.0)
        .map(|run| {
            let mut s = [0.0; 3];
            for (_, i) in run {
                let p = points[*i as usize];
                for k in 0..3 {
                    s[k] += p[k] - base[k];
                }
            }
            [0, 1, 2].map(|k| base[k] + s[k] / run.len() as f64)
        })
        .collect()
}

/// The k nearest neighbours of every point (k per point, flat), exactly: first among the points
/// of the 27 grid cells around it (cells of six times the 80th percentile of the cloud's
/// nearest-neighbour distances), which hold every point within one cell size — enough when
/// the k-th candidate is that close; else among the 125 cells up to two away (two cell sizes);
/// the kd-tree otherwise (sparse far-range points). Faster than kiddo's k-NN alone on LiDAR.
/// Returns the neighbour lists and each point's squared distance to its k-th neighbour.
fn neighbourhoods(local: &[[f32; 3]], tree: &Tree, kk: std::num::NonZero<usize>) -> (Vec<u32>, Vec<f32>) {
    use std::collections::HashMap;
    let k = kk.get();
    // Point spacing: 80th percentile of the nearest-neighbour distance over a sample (near-range
    // LiDAR points are dense; the median makes cells too small for the sparser majority).
    let two = std::num::NonZero::new(2).unwrap_or(kk);
    let mut d: Vec<f32> = local
        .iter()
        .step_by((local.len() / 256).max(1))
        .filter_map(|q| {
            tree.query(q).nearest_n::<SquaredEuclidean<f32>>(two).execute().get(1).map(|m| m.distance.sqrt())
        })
        .collect();
    d.sort_by(f32::total_cmp);
    let cell = 6.0 * d.get(d.len() * 4 / 5).copied().filter(|v| *v > 0.0).unwrap_or(0.1);
    let cell2 = cell * cell;
    let key = |p: &[f32; 3]| p.map(|v| (v / cell).floor() as i32);
    let mut order: Vec<([i32; 3], u32)> =
        local.par_iter().enumerate().map(|(i, p)| (key(p), i as u32)).collect();
    order.par_sort_unstable();
    let mut cells: HashMap<[i32; 3], (u32, u32), foldhash::fast::FixedState> =
        HashMap::with_capacity_and_hasher(order.len() / 4, foldhash::fast::FixedState::default());
    let mut runs: Vec<(u32, u32)> = Vec::new();
    let mut start = 0usize;
    for run in order.chunk_by(|a, b| a.0 == b.0) {
        let r = (start as u32, (start + run.len()) as u32);
        cells.insert(run[0].0, r);
        runs.push(r);
        start += run.len();
    }
    // Cell by cell: the candidates of the 27 cells around a cell are gathered once for all its
    // points.
    let per_run: Vec<(Vec<u32>, Vec<f32>)> = runs
        .par_iter()
        .map_init(
            || (Pool::default(), Pool::default(), Vec::<f32>::new(), Vec::<f32>::new()),
            |(pool, wide, dist, scratch), &(a, b)| {
                let c = order[a as usize].0;
                // The candidates of the cells up to `ring` cells away from this one.
                let gather = |pool: &mut Pool, ring: i32| {
                    pool.clear();
                    for dx in -ring..=ring {
                        for dy in -ring..=ring {
                            for dz in -ring..=ring {
                                if let Some(&(s, e)) = cells.get(&[c[0] + dx, c[1] + dy, c[2] + dz]) {
                                    for &(_, j) in &order[s as usize..e as usize] {
                                        pool.push(&local[j as usize], j);
                                    }
                                }
                            }
                        }
                    }
                };
                gather(pool, 1);
                wide.clear();
                let mut wide_ready = false;
                let mut out = Vec::with_capacity((b - a) as usize * k);
                let mut reach = Vec::with_capacity((b - a) as usize);
                let mut hint = 0.0f32;
                for &(_, i) in &order[a as usize..b as usize] {
                    let q = local[i as usize];
                    // Sparse points: two rings of cells, then the kd-tree.
                    let found =
                        pool.k_nearest(&q, k, cell2, 2.0 * hint, dist, scratch, &mut out).or_else(|| {
                            if !wide_ready {
                                gather(wide, 2);
                                wide_ready = true;
                            }
                            wide.k_nearest(&q, k, 4.0 * cell2, f32::INFINITY, dist, scratch, &mut out)
                        });
                    match found {
                        Some(r) => {
                            hint = r;
                            reach.push(r)
                        }
                        None => {
                            let nn =
                                tree.query(&q).nearest_n::<SquaredEuclidean<f32>>(kk).unsorted().execute();
                            out.extend(nn.iter().map(|m| m.item));
                            reach.push(nn.iter().map(|m| m.distance).fold(0.0, f32::max));
                        }
                    }
                }
                (out, reach)
            },
        )
        .collect();
    // Back to point order.
    let mut nn = vec![0u32; local.len() * k];
    let mut reach_sq = vec![0f32; local.len()];
    for (&(a, b), (res, reach)) in runs.iter().zip(&per_run) {
        for (r, &(_, i)) in order[a as usize..b as usize].iter().enumerate() {
            nn[i as usize * k..(i as usize + 1) * k].copy_from_slice(&res[r * k..(r + 1) * k]);
            reach_sq[i as usize] = reach[r];
        }
    }
    (nn, reach_sq)
}

/// Candidate points of [`neighbourhoods`], coordinates by axis (the distance loop vectorises).
#[derive(Default)]
struct Pool {
    x: Vec<f32>,
    y: Vec<f32>,
    z: Vec<f32>,
    index: Vec<u32>,
}

impl Pool {
    fn clear(&mut self) {
        self.x.clear();
        self.y.clear();
        self.z.clear();
        self.index.clear();
    }

    fn push(&mut self, p: &[f32; 3], j: u32) {
        self.x.push(p[0]);
        self.y.push(p[1]);
        self.z.push(p[2]);
        self.index.push(j);
    }

    /// Appends the `k` candidates nearest to `q` to `out` and returns the k-th squared
    /// distance, when that is at most `max_sq` (every point within it is then a candidate);
    /// `None` (nothing appended) otherwise. `hint` is a guess of the k-th squared distance (a
    /// nearby point's): when at least `k` candidates lie within it, only those are ranked.
    #[allow(clippy::too_many_arguments)] // the query and its reusable buffers
    fn k_nearest(
        &self,
        q: &[f32; 3],
        k: usize,
        max_sq: f32,
        hint: f32,
        dist: &mut Vec<f32>,
        scratch: &mut Vec<f32>,
        out: &mut Vec<u32>,
    ) -> Option<f32> {
        if self.index.len() < k {
            return None;
        }
        dist.clear();
        dist.extend(
            self.x.iter().zip(&self.y).zip(&self.z).map(|((x, y), z)| {
                (x - q[0]) * (x - q[0]) + (y - q[1]) * (y - q[1]) + (z - q[2]) * (z - q[2])
            }),
        );
        scratch.clear();
        scratch.extend(dist.iter().filter(|d| **d <= hint));
        if scratch.len() < k {
            scratch.clear();
            scratch.extend_from_slice(dist);
        }
        let kth = *scratch.select_nth_unstable_by(k - 1, f32::total_cmp).1;
        if kth > max_sq {
            return None;
        }
        // The candidates nearer than the k-th, then as many at exactly its distance as fill k.
        let start = out.len();
        out.extend(self.index.iter().zip(dist.iter()).filter(|(_, d)| **d < kth).map(|(j, _)| *j));
        let mut ties = self.index.iter().zip(dist.iter()).filter(|(_, d)| **d == kth).map(|(j, _)| *j);
        while out.len() - start < k {
            out.push(ties.next()?);
        }
        Some(kth)
    }
}

impl GicpCloud {
    /// Builds the kd-tree and covariances (k nearest neighbours, eigenvalues replaced by
    /// 1, 1, 1e-3 — the plane model of GICP). Fails with fewer than `k` points or a
    /// non-finite coordinate.
    pub fn new(points: Vec<[f64; 3]>, k_neighbours: usize) -> Result<Self, RegisterError> {
        let k = k_neighbours.max(3);
        if points.len() < k {
            return Err(RegisterError::TooFewPoints { have: points.len(), need: k });
        }
        if points.iter().any(|p| p.iter().any(|v| !v.is_finite())) {
            return Err(RegisterError::NonFinite);
        }
        let n = points.len() as f64;
        let shift = [0, 1, 2].map(|k| points.iter().map(|p| p[k]).sum::<f64>() / n);
        let local: Vec<[f64; 3]> =
            points.iter().map(|p| [p[0] - shift[0], p[1] - shift[1], p[2] - shift[2]]).collect();
        let local32: Vec<[f32; 3]> = local.iter().map(|p| p.map(|v| v as f32)).collect();
        let tree: Tree =
            Tree::new_from_slice(&local32).map_err(|e| RegisterError::Solver(format!("kd-tree: {e}")))?;
        let kk = std::num::NonZero::new(k).unwrap_or(std::num::NonZero::<usize>::MIN);
        // k nearest neighbours of every point, as one batch (the covariance needs no order).
        let (nn, reach_sq) = neighbourhoods(&local32, &tree, kk);
        let covariances = nn
            .par_chunks(k)
            .map(|nn| {
                let mut mean = Vector3::zeros();
                for &m in nn {
                    mean += Vector3::from(local[m as usize]);
                }
                mean /= nn.len() as f64;
                let mut c = Matrix3::zeros();
                for &m in nn {
                    let d = Vector3::from(local[m as usize]) - mean;
                    c += d * d.transpose();
                }
                regularise(c / nn.len() as f64)
            })
            .collect();
        Ok(Self { points, covariances, tree, local32, neighbours: nn, reach_sq, k, shift })
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// True when empty (never: construction needs `k` points).
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }
}

/// The plane model of a neighbourhood covariance: the normal (eigenvector of the smallest
/// eigenvalue) gets variance 1e-3, the tangent directions 1: `I − (1 − 1e-3)·n·nᵀ`.
fn regularise(c: Matrix3<f64>) -> Matrix3<f64> {
    match smallest_eigenvector(&c) {
        Some(n) => Matrix3::identity() - (1.0 - 1e-3) * n * n.transpose(),
        None => regularise_eigen(c),
    }
}

/// Unit eigenvector of the smallest eigenvalue of a symmetric 3×3 matrix in closed form
/// (trigonometric eigenvalues, cross products of the rows of `A − λI`); `None` when the
/// smallest eigenvalue is (nearly) repeated and the direction is not well defined that way.
fn smallest_eigenvector(a: &Matrix3<f64>) -> Option<Vector3<f64>> {
    let scale = a.abs().max();
    if scale.is_nan() || scale <= 0.0 || !scale.is_finite() {
        return None;
    }
    let m = a / scale;
    let q = m.trace() / 3.0;
    let b = m - Matrix3::identity() * q;
    let p2 = (b.norm_squared() / 6.0).max(0.0);
    let p = p2.sqrt();
    if p < 1e-9 {
        return None;
    }
    let r = (b.determinant() / (2.0 * p2 * p)).clamp(-1.0, 1.0);
    let phi = r.acos() / 3.0;
    // Eigenvalues q + 2p·cos(φ + 2πk/3); k = 1 gives the smallest.
    let lambda = q + 2.0 * p * (phi + 2.0 * std::f64::consts::PI / 3.0).cos();
    let s = m - Matrix3::identity() * lambda;
    let (r0, r1, r2) = (s.row(0).transpose(), s.row(1).transpose(), s.row(2).transpose());
    let cands = [r0.cross(&r1), r0.cross(&r2), r1.cross(&r2)];
    let best = cands.iter().max_by(|x, y| x.norm_squared().total_cmp(&y.norm_squared()))?;
    let n2 = best.norm_squared();
    // Rows nearly parallel: the smallest eigenvalue is (nearly) double.
    if n2 < 1e-12 * s.norm_squared().max(1e-300).powi(2) || n2 < 1e-24 {
        return None;
    }
    Some(best / n2.sqrt())
}

fn regularise_eigen(c: Matrix3<f64>) -> Matrix3<f64> {
    let e = c.symmetric_eigen();
    // Smallest eigenvalue's direction is the normal.
    let mut idx = [0usize, 1, 2];
    idx.sort_by(|&a, &b| e.eigenvalues[a].total_cmp(&e.eigenvalues[b]));
    let vals = {
        let mut v = Vector3::zeros();
        v[idx[0]] = 1e-3;
        v[idx[1]] = 1.0;
        v[idx[2]] = 1.0;
        v
    };
    e.eigenvectors * Matrix3::from_diagonal(&vals) * e.eigenvectors.transpose()
}

/// The outcome of [`align`].
#[derive(Debug, Clone)]
pub struct GicpResult {
    /// The transform mapping source points onto the target.
    pub target_from_source: Isometry3<f64>,
    /// The update fell below the thresholds before the iteration limit.
    pub converged: bool,
    /// Iterations run.
    pub iterations: usize,
    /// Final sum of (robust-weighted) Mahalanobis errors.
    pub error: f64,
    /// Source points with a correspondence at the end.
    pub inliers: usize,
    /// Gauss–Newton information matrix of the pose at the solution (rotation first, in the
    /// source frame, perturbation `T·exp(δ)`), for the pose graph.
    pub information: Matrix6<f64>,
}

fn shifted(t: &Isometry3<f64>, s_target: [f64; 3], s_source: [f64; 3]) -> Isometry3<f64> {
    // T' maps (p - s_source) to (T p - s_target).
    Translation3::new(-s_target[0], -s_target[1], -s_target[2])
        * t
        * Translation3::new(s_source[0], s_source[1], s_source[2])
}

/// What the correspondence search keeps between iterations, per source point: the exact
/// nearest target point found last, and a lower bound on the distance to the target cloud
/// that holds wherever the point has moved since.
struct NearestCache {
    /// Index of the nearest target point at `at` (`u32::MAX`: none searched yet).
    index: Vec<u32>,
    /// Distance from `at` to the nearest target point, m.
    dist: Vec<f32>,
    /// Where the point was (target-local) when `index` and `dist` were found.
    at: Vec<[f32; 3]>,
}

impl NearestCache {
    fn new(n: usize) -> Self {
        Self { index: vec![u32::MAX; n], dist: vec![0.0; n], at: vec![[0.0; 3]; n] }
    }
}

/// Squared f32 distance, summed as kiddo's `SquaredEuclidean` does.
#[inline]
fn dist_sq(a: &[f32; 3], b: &[f32; 3]) -> f32 {
    (a[0] - b[0]) * (a[0] - b[0]) + (a[1] - b[1]) * (a[1] - b[1]) + (a[2] - b[2]) * (a[2] - b[2])
}

/// The exact nearest target point to `q`, starting from a target point `j` close to it: a
/// descent over the target's neighbour lists, accepted when the result is certified — every
/// point nearer to `q` than the found `m` lies within twice that distance of `m`, so inside
/// `m`'s neighbour list when that is less than its k-th neighbour's distance. `None`: not
/// certified (the caller asks the kd-tree).
#[inline]
fn nearest_from(target: &GicpCloud, q: &[f32; 3], mut j: usize) -> Option<(usize, f32)> {
    let mut d = dist_sq(q, &target.local32[j]);
    for _ in 0..8 {
        let mut best = j;
        for &m in &target.neighbours[j * target.k..(j + 1) * target.k] {
            let dm = dist_sq(q, &target.local32[m as usize]);
            if dm < d {
                (d, best) = (dm, m as usize);
            }
        }
        if best == j {
            // Margin for f32 rounding of the distances compared.
            return (4.0 * d * (1.0 + 1e-4) < target.reach_sq[j]).then_some((j, d));
        }
        j = best;
    }
    None
}

/// Nearest target point within the correspondence distance of each transformed source point,
/// exactly as a kd-tree search of every point would find it. Between iterations a point moves
/// little: one that was far from the target by more than the distance it moved plus the gate
/// has no correspondence; the others start from last iteration's nearest point
/// ([`nearest_from`]) and fall back to the kd-tree when that is not certified.
fn correspondences(
    target: &GicpCloud,
    source_local: &[[f64; 3]],
    t: &Isometry3<f64>,
    cfg: &GicpConfig,
    cache: &mut NearestCache,
) -> Vec<u32> {
    let max_sq = cfg.max_correspondence_m * cfg.max_correspondence_m;
    // Margin on the skip test for f32 rounding, m.
    let skip_beyond = cfg.max_correspondence_m as f32 + 1e-4;
    source_local
        .par_iter()
        .zip(cache.index.par_iter_mut())
        .zip(cache.dist.par_iter_mut())
        .zip(cache.at.par_iter_mut())
        .map(|(((p, index), dist), at)| {
            let tp = t * nalgebra::Point3::from(*p);
            let q = [tp.x as f32, tp.y as f32, tp.z as f32];
            if *index != u32::MAX {
                // No target point is nearer to q than dist − |q − at|.
                if *dist - dist_sq(&q, at).sqrt() > skip_beyond {
                    return u32::MAX;
                }
            }
            let (j, d2) =
                match (*index != u32::MAX).then(|| nearest_from(target, &q, *index as usize)).flatten() {
                    Some(found) => found,
                    None => {
                        let nn = target.tree.query(&q).nearest_one::<SquaredEuclidean<f32>>().execute();
                        (nn.item as usize, nn.distance)
                    }
                };
            (*index, *dist, *at) = (j as u32, d2.sqrt(), q);
            if d2 as f64 > max_sq { u32::MAX } else { j as u32 }
        })
        .collect()
}

/// One correspondence at pose `t` (rotation matrix `r`): the residual `e = q − T·p` (both
/// clouds local), its information `M = (C_q + R·C_p·Rᵀ)⁻¹` and its Huber weight; `None` when the
/// combined covariance is singular.
#[allow(clippy::too_many_arguments)] // the pieces of one correspondence
#[inline]
fn residual(
    target: &GicpCloud,
    source: &GicpCloud,
    i: usize,
    j: usize,
    p: &[f64; 3],
    t: &Isometry3<f64>,
    r: &Matrix3<f64>,
    cfg: &GicpConfig,
) -> Option<(Vector3<f64>, Matrix3<f64>, f64)> {
    let tp = t * nalgebra::Point3::from(*p);
    let q = &target.points[j];
    let e = Vector3::new(
        q[0] - target.shift[0] - tp.x,
        q[1] - target.shift[1] - tp.y,
        q[2] - target.shift[2] - tp.z,
    );
    let m = (target.covariances[j] + r * source.covariances[i] * r.transpose()).try_inverse()?;
    let w = match cfg.huber_m {
        Some(h) => {
            let d = e.norm();
            if d <= h { 1.0 } else { h / d }
        }
        None => 1.0,
    };
    Some((e, m, w))
}

/// The robust Mahalanobis error of correspondences `corr` at pose `t` (the cost of a trial
/// step: no Jacobians).
fn error_at(
    target: &GicpCloud,
    source_local: &[[f64; 3]],
    source: &GicpCloud,
    t: &Isometry3<f64>,
    corr: &[u32],
    cfg: &GicpConfig,
) -> f64 {
    let r = t.rotation.to_rotation_matrix().into_inner();
    let partial: Vec<f64> = source_local
        .par_chunks(SUM_CHUNK)
        .enumerate()
        .map(|(c, chunk)| {
            let mut sum = 0.0;
            for (k, p) in chunk.iter().enumerate() {
                let i = c * SUM_CHUNK + k;
                if corr[i] != u32::MAX
                    && let Some((e, m, w)) = residual(target, source, i, corr[i] as usize, p, t, &r, cfg)
                {
                    sum += w * e.dot(&(m * e));
                }
            }
            sum
        })
        .collect();
    partial.iter().sum()
}

/// Points per partial sum of the cost and the normal equations (small enough that a 9 000-point
/// scan still spreads over both cores). Sums run over fixed chunks
/// and are added in chunk order, so results do not depend on how rayon splits the work
/// (a plain parallel `sum`/`reduce` associates differently from run to run).
const SUM_CHUNK: usize = 512;

/// Sum over the correspondences `corr` of (H, b, error, inliers) at pose `t` (both clouds
/// local). The error of a trial step is evaluated with the correspondences of the current
/// pose (as small_gicp does), so a step is not judged by how many pairs it gains or loses.
fn linearise(
    target: &GicpCloud,
    source_local: &[[f64; 3]],
    source: &GicpCloud,
    t: &Isometry3<f64>,
    corr: &[u32],
    cfg: &GicpConfig,
) -> (Matrix6<f64>, Vector6<f64>, f64, usize) {
    let r = t.rotation.to_rotation_matrix().into_inner();
    let zero = || (Matrix6::zeros(), Vector6::zeros(), 0.0, 0usize);
    let partial: Vec<Normal> = source_local
        .par_chunks(SUM_CHUNK)
        .enumerate()
        .map(|(c, chunk)| {
            chunk.iter().enumerate().fold(zero(), |acc, (k, p)| {
                add_term(target, source, c * SUM_CHUNK + k, p, t, &r, corr, cfg, acc)
            })
        })
        .collect();
    partial.into_iter().fold(zero(), |a, b| (a.0 + b.0, a.1 + b.1, a.2 + b.2, a.3 + b.3))
}

/// Normal equations H, b, the cost and the inlier count.
type Normal = (Matrix6<f64>, Vector6<f64>, f64, usize);

/// Adds point `i`'s term to the normal equations `acc` (unchanged without a correspondence).
#[allow(clippy::too_many_arguments)]
fn add_term(
    target: &GicpCloud,
    source: &GicpCloud,
    i: usize,
    p: &[f64; 3],
    t: &Isometry3<f64>,
    r: &Matrix3<f64>,
    corr: &[u32],
    cfg: &GicpConfig,
    mut acc: Normal,
) -> Normal {
    if corr[i] == u32::MAX {
        return acc;
    }
    let Some((e, m, w)) = residual(target, source, i, corr[i] as usize, p, t, r, cfg) else {
        return acc;
    };
    let pv = Vector3::from(*p);
    // e(δ) = q − T·exp(δ)·p; ∂e/∂ω = R[p]×, ∂e/∂v = −R.
    let mut jac = nalgebra::Matrix3x6::zeros();
    jac.fixed_view_mut::<3, 3>(0, 0).copy_from(&(r * skew(&pv)));
    jac.fixed_view_mut::<3, 3>(0, 3).copy_from(&(-r));
    let jtm = jac.transpose() * m * w;
    acc.0 += jtm * jac;
    acc.1 += jtm * e;
    acc.2 += w * e.dot(&(m * e));
    acc.3 += 1;
    acc
}

/// Aligns `source` onto `target` from `init_target_from_source` (GICP, LM steps).
pub fn align(
    target: &GicpCloud,
    source: &GicpCloud,
    init_target_from_source: &Isometry3<f64>,
    cfg: &GicpConfig,
) -> GicpResult {
    let source_local: Vec<[f64; 3]> = source
        .points
        .iter()
        .map(|p| [p[0] - source.shift[0], p[1] - source.shift[1], p[2] - source.shift[2]])
        .collect();
    let mut t = shifted(init_target_from_source, target.shift, source.shift);
    let mut lambda = 1e-4;
    let mut cache = NearestCache::new(source_local.len());
    let mut corr = correspondences(target, &source_local, &t, cfg, &mut cache);
    let (mut h, mut b, mut err, mut inl) = linearise(target, &source_local, source, &t, &corr, cfg);
    let mut converged = false;
    let mut iterations = 0;
    while iterations < cfg.max_iterations {
        iterations += 1;
        let mut stepped = false;
        // LM: raise the damping until a step lowers the error (at most 10 tries).
        for _ in 0..10 {
            let damped = h + Matrix6::identity() * lambda * h.diagonal().max().max(1e-9);
            let Some(delta) = damped.cholesky().map(|c| c.solve(&(-b))) else {
                lambda *= 10.0;
                continue;
            };
            // e = q − T exp(δ) p ⇒ normal equations H δ = −Jᵀ M e with J = ∂e/∂δ.
            let cand = t * exp_se3(&delta);
            let err2 = error_at(target, &source_local, source, &cand, &corr, cfg);
            let small = delta.fixed_rows::<3>(0).norm() < cfg.rotation_eps_rad
                && delta.fixed_rows::<3>(3).norm() < cfg.translation_eps_m;
            if err2 <= err || small {
                t = cand;
                corr = correspondences(target, &source_local, &t, cfg, &mut cache);
                (h, b, err, inl) = linearise(target, &source_local, source, &t, &corr, cfg);
                lambda = (lambda / 10.0).max(1e-8);
                stepped = true;
                if small && inl > 0 {
                    converged = true;
                }
                break;
            }
            lambda *= 10.0;
        }
        if converged || !stepped {
            converged |= !stepped && inl > 0;
            break;
        }
    }
    let target_from_source = Translation3::new(target.shift[0], target.shift[1], target.shift[2])
        * t
        * Translation3::new(-source.shift[0], -source.shift[1], -source.shift[2]);
    GicpResult { target_from_source, converged, iterations, error: err, inliers: inl, information: h }
}

/// Share of `source` points that have a `target` point within `radius_m` once moved by
/// `target_from_source` (the overlap score of an alignment).
pub fn overlap(
    target: &GicpCloud,
    source: &GicpCloud,
    target_from_source: &Isometry3<f64>,
    radius_m: f64,
) -> f64 {
    if source.is_empty() {
        return 0.0;
    }
    let r2 = radius_m * radius_m;
    let hits = source
        .points
        .par_iter()
        .filter(|p| {
            let q = target_from_source * nalgebra::Point3::from(**p);
            let nn = target
                .tree
                .query(&[
                    (q.x - target.shift[0]) as f32,
                    (q.y - target.shift[1]) as f32,
                    (q.z - target.shift[2]) as f32,
                ])
                .nearest_one::<SquaredEuclidean<f32>>()
                .execute();
            (nn.distance as f64) <= r2
        })
        .count();
    hits as f64 / source.len() as f64
}

/// Rotation angle (degrees) and translation norm (m) of `a⁻¹ b`.
pub fn pose_difference(a: &Isometry3<f64>, b: &Isometry3<f64>) -> (f64, f64) {
    let d = a.inverse() * b;
    (d.rotation.angle().to_degrees(), d.translation.vector.norm())
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::UnitQuaternion;
    use rand::{Rng, SeedableRng};

    #[test]
    fn closed_form_plane_model_matches_the_eigen_solver() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        for i in 0..2000 {
            // Neighbourhood-like covariances: planes, lines, blobs, at random orientations.
            let axes = Vector3::new(
                rng.random_range(0.0..1.0),
                rng.random_range(0.0..1.0),
                rng.random_range(0.0..1.0),
            );
            let shape = match i % 4 {
                0 => Vector3::new(1.0, 0.8, 1e-4),
                1 => Vector3::new(1.0, 1e-3, 1e-3 * (1.0 + axes.x)),
                2 => Vector3::new(0.5 + axes.x, 0.5 + axes.y, 0.5 + axes.z),
                _ => Vector3::new(1.0, 0.3 * axes.y + 0.01, 0.02 * axes.z),
            };
            let rot = UnitQuaternion::from_euler_angles(
                rng.random_range(-3.0..3.0),
                rng.random_range(-1.5..1.5),
                rng.random_range(-3.0..3.0),
            )
            .to_rotation_matrix()
            .into_inner();
            let c = rot * Matrix3::from_diagonal(&shape) * rot.transpose() * rng.random_range(1e-4..10.0);
            let reference = regularise_eigen(c);
            let ours = regularise(c);
            assert!((ours - reference).abs().max() < 1e-6, "case {i}: {ours} vs {reference}");
        }
    }

    /// A LiDAR-like cloud: a dense ground disc thinning with range, two walls and scattered
    /// far points (the sparse cases that leave the grid for the kd-tree).
    fn street(rng: &mut rand_chacha::ChaCha8Rng, n: usize) -> Vec<[f64; 3]> {
        (0..n)
            .map(|i| {
                let r: f64 = 2.0 + 60.0 * rng.random_range(0.0f64..1.0).powi(2);
                let a: f64 = rng.random_range(0.0..std::f64::consts::TAU);
                match i % 5 {
                    0 => [
                        rng.random_range(-30.0..30.0),
                        8.0 + rng.random_range(-0.02..0.02),
                        rng.random_range(0.0..6.0),
                    ],
                    1 => [rng.random_range(-30.0..30.0), -7.0, rng.random_range(0.0..4.0)],
                    2 if i % 50 == 2 => [
                        rng.random_range(-80.0..80.0),
                        rng.random_range(-80.0..80.0),
                        rng.random_range(0.0..20.0),
                    ],
                    _ => [r * a.cos(), r * a.sin(), rng.random_range(-0.03..0.03)],
                }
            })
            .collect()
    }

    #[test]
    fn neighbourhoods_are_the_exact_k_nearest() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let cloud = GicpCloud::new(street(&mut rng, 6000), 20).expect("cloud");
        for (i, q) in cloud.local32.iter().enumerate() {
            // Reference: kiddo's k-NN, sorted.
            let reference = cloud
                .tree
                .query(q)
                .nearest_n::<SquaredEuclidean<f32>>(std::num::NonZero::new(20).expect("k > 0"))
                .execute();
            let kth = reference.last().expect("20 neighbours").distance;
            assert_eq!(cloud.reach_sq[i], kth, "point {i}");
            let list = &cloud.neighbours[i * 20..(i + 1) * 20];
            let mut seen = list.to_vec();
            seen.sort_unstable();
            seen.dedup();
            assert_eq!(seen.len(), 20, "point {i}: repeated neighbours");
            for m in list {
                assert!(dist_sq(q, &cloud.local32[*m as usize]) <= kth, "point {i}: {m} is beyond the k-th");
            }
            // Every point strictly nearer than the k-th is listed.
            for nb in reference.iter().filter(|nb| nb.distance < kth) {
                assert!(list.contains(&nb.item), "point {i}: {} missing", nb.item);
            }
        }
    }

    #[test]
    fn cached_correspondences_equal_a_fresh_kd_tree_search() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(6);
        let target = GicpCloud::new(street(&mut rng, 8000), 20).expect("target");
        let source_local: Vec<[f64; 3]> = street(&mut rng, 3000)
            .iter()
            .map(|p| [p[0] - target.shift[0], p[1] - target.shift[1], p[2]])
            .collect();
        let cfg = GicpConfig::default();
        let mut cache = NearestCache::new(source_local.len());
        // A far start, then steps shrinking as an optimisation's do, and a jump back.
        let mut poses = vec![Isometry3::new(Vector3::new(1.2, -0.6, 0.3), Vector3::new(0.01, -0.02, 0.12))];
        for s in 0..8 {
            let f = 0.5f64.powi(s);
            poses.push(Isometry3::new(
                Vector3::new(1.2 * f, -0.6 * f, 0.3 * f),
                Vector3::new(0.01 * f, -0.02 * f, 0.12 * f),
            ));
        }
        poses.push(poses[1]);
        let (mut kept, mut total) = (0usize, 0usize);
        for t in &poses {
            let before = cache.index.clone();
            let ours = correspondences(&target, &source_local, t, &cfg, &mut cache);
            for (i, p) in source_local.iter().enumerate() {
                let tp = t * nalgebra::Point3::from(*p);
                let q = [tp.x as f32, tp.y as f32, tp.z as f32];
                let nn = target.tree.query(&q).nearest_one::<SquaredEuclidean<f32>>().execute();
                let expected =
                    if nn.distance as f64 > cfg.max_correspondence_m.powi(2) { u32::MAX } else { nn.item };
                if expected == u32::MAX {
                    assert_eq!(ours[i], u32::MAX, "point {i}");
                } else {
                    // Ties aside, the same point: the same distance.
                    assert_eq!(dist_sq(&q, &target.local32[ours[i] as usize]), nn.distance, "point {i}");
                }
            }
            kept += before.iter().zip(&cache.index).filter(|(b, a)| *b != &u32::MAX && b == a).count();
            total += source_local.len();
        }
        // Points whose nearest stayed the same (the descent starts at the answer): the cache must
        // be in use, or this test checks only the kd-tree.
        assert!(kept > total / 4, "{kept} of {total}");
    }
}
