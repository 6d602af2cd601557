//! The road layout as an ASAM OpenDRIVE 1.8 file (`.xodr`).
//!
//! * **Roads.** Lanes that lie side by side and share their boundaries (left/right neighbours,
//!   and opposite-direction lanes across the centre line) form one lane group; each group is one
//!   `<road>` with one lane section. Lanes inside intersections become connecting roads of a
//!   `<junction>`.
//! * **Reference line.** The boundary between the two directions (or, for one-way groups, the
//!   leftmost boundary in the direction of travel) is fitted, within
//!   [`OpenDriveConfig::max_fit_error_m`], by a sequence of `<line>`, `<arc>` and `<paramPoly3>`
//!   (`pRange="normalized"`) geometries. Pieces join in position and heading (each starts along
//!   the previous one's end heading); only where nothing fits along that heading (a kink in the
//!   source sharper than the tolerance) does the heading jump, reported as
//!   [`OpenDriveSummary::max_heading_jump_deg`].
//! * **Lanes.** Ids are negative right of the reference line and positive left of it; lanes
//!   right of it travel along `s` (right-hand traffic, `rule="RHT"`). A lane whose travel
//!   direction disagrees with that gets `direction="reversed"`, a two-way lane
//!   `direction="both"`. Widths are piecewise cubic `<width>` polynomials fitted to the distances
//!   between the source boundaries, measured along the written reference line's normals; each
//!   lane's width is fitted against its inner border *as written*, so errors do not add up
//!   outward. Lane types follow [`LaneKind`]; `<roadMark>` per outer boundary (and the centre
//!   lane for the reference boundary) follows the boundary's line type, colour and width.
//! * **Heights.** `<elevationProfile>` is fitted to the reference boundary's heights. Cross-fall
//!   is not written (no `<superelevation>`): the largest height difference it leaves is
//!   reported as [`OpenDriveSummary::max_height_error_m`].
//! * **Topology.** Road and lane `<link>`s where the layout has successors between roads;
//!   successors into an intersection become junction `<connection>`s with `<laneLink>`s.
//!   Successors that cannot be written (a road end meeting several roads outside a junction)
//!   are listed in [`OpenDriveSummary::unconnected_successors`] and `issues`: no geometry is
//!   invented.
//! * **Objects.** Crosswalks are `<object type="crosswalk">`, stop lines
//!   `<object type="roadMark" subtype="stopLine">`, each with an `<outline>` of `<cornerLocal>`
//!   corners on the nearest road.
//! * **Frame.** Coordinates are the layout's projected CRS minus the map origin; the header
//!   carries the CRS as WKT in `<geoReference>` and the origin in `<offset>` (projected =
//!   written + offset, `hdg="0"`), and the vertical datum as `<userData code="hdmap:vertical_datum">`.
//!   Every lane carries `<userData code="hdmap:lane" value="<layout lane id>">`.
//!
//! The summary's errors are measured by evaluating the written geometry (this module's own
//! evaluator of lines, arcs, paramPoly3 and width/elevation polynomials) at the stations of the
//! source vertices. Output is byte-identical for the same layout and config.

use std::collections::{BTreeMap, BTreeSet};
use std::f64::consts::PI;
use std::fmt::Write as _;
use std::path::Path;

use hdmap_core::nalgebra::Point3;
use hdmap_core::{EdgeKind, ElementId, Issues, LaneKind, LineType, MarkingColor, RoadLayout};
use serde::{Deserialize, Serialize};

use crate::ExportError;

/// How the layout becomes OpenDRIVE.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OpenDriveConfig {
    /// Largest distance allowed between a source vertex (reference boundary, lane boundaries,
    /// heights) and the fitted geometry, metres. The reference line, every lane width and the
    /// elevation are fitted to this tolerance; a lane that ends up farther is reported.
    pub max_fit_error_m: f64,
    /// Station step at which lane widths are measured across the written reference line and
    /// fitted, metres (along `s`).
    pub width_step_m: f64,
}

impl Default for OpenDriveConfig {
    fn default() -> Self {
        Self { max_fit_error_m: 0.05, width_step_m: 0.5 }
    }
}

impl OpenDriveConfig {
    /// Checks every value; the message names the key.
    pub fn validate(&self) -> Result<(), ExportError> {
        for (key, v) in [("max_fit_error_m", self.max_fit_error_m), ("width_step_m", self.width_step_m)] {
            if !(v.is_finite() && v > 0.0) {
                return Err(ExportError::Layout(format!(
                    "opendrive.{key} = {v}: must be a positive number of metres"
                )));
            }
        }
        Ok(())
    }
}

/// Plan-view geometries written, by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GeometryCounts {
    /// `<line>`.
    pub line: usize,
    /// `<arc>`.
    pub arc: usize,
    /// `<paramPoly3>`.
    pub param_poly3: usize,
}

/// Where a layout lane went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LaneMapping {
    /// The layout lane.
    pub lane: ElementId,
    /// OpenDRIVE road id.
    pub road: u32,
    /// OpenDRIVE lane id in the road's only lane section.
    pub lane_id: i32,
}

/// A layout successor the file does not carry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnconnectedSuccessor {
    /// The lane.
    pub lane: ElementId,
    /// Its successor.
    pub successor: ElementId,
    /// Why it was not written.
    pub reason: String,
}

/// An element not written, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    /// Kind and id, e.g. `lane 17`.
    pub element: String,
    /// Why.
    pub reason: String,
}

/// What was written, and how closely it reproduces the layout.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct OpenDriveSummary {
    /// Roads written, connecting roads included.
    pub roads: usize,
    /// Roads inside junctions.
    pub connecting_roads: usize,
    /// Junctions written.
    pub junctions: usize,
    /// Junction `<connection>`s.
    pub junction_connections: usize,
    /// Lane sections written.
    pub lane_sections: usize,
    /// Lanes written (centre lanes not counted).
    pub lanes: usize,
    /// Plan-view geometries by kind.
    pub geometries: GeometryCounts,
    /// Largest horizontal distance between a reference-boundary vertex and the written
    /// reference line, metres.
    pub max_reference_error_m: f64,
    /// Largest horizontal distance between a lane-boundary vertex and the written lane border
    /// (reference line + widths, measured along the reference line's normal), metres.
    pub max_boundary_error_m: f64,
    /// Mean of the same over all boundary vertices, metres.
    pub mean_boundary_error_m: f64,
    /// Largest horizontal distance between a lane centre-line vertex and the written lane's
    /// centre (halfway between its borders), metres.
    pub max_center_line_error_m: f64,
    /// Mean of the same, metres.
    pub mean_center_line_error_m: f64,
    /// Largest height difference between a boundary or centre-line vertex and the road
    /// elevation at its station, metres (includes cross-fall, which is not written).
    pub max_height_error_m: f64,
    /// Largest heading difference where two plan-view geometries meet, degrees.
    pub max_heading_jump_deg: f64,
    /// Crosswalk objects written.
    pub crosswalks: usize,
    /// Stop-line objects written.
    pub stop_lines: usize,
    /// Every written lane's road and lane id.
    pub lane_map: Vec<LaneMapping>,
    /// Successors not written.
    pub unconnected_successors: Vec<UnconnectedSuccessor>,
    /// Elements not written.
    pub skipped: Vec<Skipped>,
}

// ---------------------------------------------------------------------------------------------
// Plan-view geometry and its evaluator.

/// Sub-intervals of the arc-length table of a paramPoly3.
const TABLE_N: usize = 64;

#[derive(Debug, Clone, PartialEq)]
enum Shape {
    Line,
    Arc {
        curvature: f64,
    },
    /// `pRange="normalized"`; `table[k]` is the arc length at `p = k / TABLE_N`.
    Poly {
        u: [f64; 4],
        v: [f64; 4],
        table: Vec<f64>,
    },
}

/// One `<geometry>`: start station, start point, start heading (rad), length (m).
#[derive(Debug, Clone, PartialEq)]
struct Piece {
    s: f64,
    x: f64,
    y: f64,
    hdg: f64,
    length: f64,
    shape: Shape,
}

fn cubic(c: &[f64; 4], p: f64) -> f64 {
    c[0] + p * (c[1] + p * (c[2] + p * c[3]))
}
fn dcubic(c: &[f64; 4], p: f64) -> f64 {
    c[1] + p * (2.0 * c[2] + 3.0 * c[3] * p)
}
fn ddcubic(c: &[f64; 4], p: f64) -> f64 {
    2.0 * c[2] + 6.0 * c[3] * p
}

/// Arc length of a parametric cubic between `a` and `b` (3-point Gauss–Legendre).
fn poly_len(u: &[f64; 4], v: &[f64; 4], a: f64, b: f64) -> f64 {
    const X: [f64; 3] = [-0.774_596_669_241_483_4, 0.0, 0.774_596_669_241_483_4];
    const W: [f64; 3] = [5.0 / 9.0, 8.0 / 9.0, 5.0 / 9.0];
    let (m, h) = ((a + b) / 2.0, (b - a) / 2.0);
    (0..3).map(|i| W[i] * dcubic(u, m + h * X[i]).hypot(dcubic(v, m + h * X[i]))).sum::<f64>() * h
}

fn poly_table(u: &[f64; 4], v: &[f64; 4]) -> Vec<f64> {
    let mut t = vec![0.0];
    for k in 0..TABLE_N {
        let (a, b) = (k as f64 / TABLE_N as f64, (k + 1) as f64 / TABLE_N as f64);
        t.push(t[k] + poly_len(u, v, a, b));
    }
    t
}

fn rot(p: [f64; 2], a: f64) -> [f64; 2] {
    let (s, c) = a.sin_cos();
    [c * p[0] - s * p[1], s * p[0] + c * p[1]]
}

fn wrap(a: f64) -> f64 {
    let mut a = a % (2.0 * PI);
    if a > PI {
        a -= 2.0 * PI;
    } else if a < -PI {
        a += 2.0 * PI;
    }
    a
}

impl Piece {
    /// The parameter `p` of a paramPoly3 at arc length `ds` from its start.
    fn poly_p(u: &[f64; 4], v: &[f64; 4], table: &[f64], ds: f64) -> f64 {
        let k = table.partition_point(|&l| l <= ds).clamp(1, TABLE_N) - 1;
        let (l0, l1) = (table[k], table[k + 1]);
        let p0 = k as f64 / TABLE_N as f64;
        let mut p = p0 + ((ds - l0) / (l1 - l0).max(1e-12)).clamp(0.0, 1.0) / TABLE_N as f64;
        for _ in 0..2 {
            let speed = dcubic(u, p).hypot(dcubic(v, p)).max(1e-12);
            p += (ds - l0 - poly_len(u, v, p0, p)) / speed;
        }
        p
    }

    /// Point and heading (rad) at `ds` metres from the piece's start.
    fn eval(&self, ds: f64) -> ([f64; 2], f64) {
        let (local, h) = match &self.shape {
            Shape::Line => ([ds, 0.0], 0.0),
            Shape::Arc { curvature: k } => {
                let a = k * ds;
                if k.abs() < 1e-12 { ([ds, 0.0], 0.0) } else { ([a.sin() / k, (1.0 - a.cos()) / k], a) }
            }
            Shape::Poly { u, v, table } => {
                let p = Self::poly_p(u, v, table, ds);
                ([cubic(u, p), cubic(v, p)], dcubic(v, p).atan2(dcubic(u, p)))
            }
        };
        let g = rot(local, self.hdg);
        ([self.x + g[0], self.y + g[1]], self.hdg + h)
    }
}

/// A written reference line: pieces with cumulative stations.
#[derive(Debug, Clone, PartialEq)]
struct RefLine {
    pieces: Vec<Piece>,
    length: f64,
}

impl RefLine {
    fn new(mut pieces: Vec<Piece>) -> Self {
        let mut s = 0.0;
        for p in &mut pieces {
            p.s = s;
            s += p.length;
        }
        Self { pieces, length: s }
    }

    /// Point, heading at station `s` (clamped to the line).
    fn eval(&self, s: f64) -> ([f64; 2], f64) {
        let s = s.clamp(0.0, self.length);
        let i = self.pieces.partition_point(|p| p.s <= s).clamp(1, self.pieces.len()) - 1;
        let p = &self.pieces[i];
        p.eval(s - p.s)
    }

    /// Station of the foot of `q` and the signed lateral offset (left positive) of `q` there.
    fn project(&self, q: [f64; 2]) -> (f64, f64) {
        let step = 0.5;
        let n = (self.length / step).ceil().max(1.0) as usize;
        let mut best = (0.0, f64::INFINITY);
        let mut prev = self.eval(0.0).0;
        for k in 1..=n {
            let s1 = self.length * k as f64 / n as f64;
            let s0 = self.length * (k - 1) as f64 / n as f64;
            let cur = self.eval(s1).0;
            let d = [cur[0] - prev[0], cur[1] - prev[1]];
            let l2 = d[0] * d[0] + d[1] * d[1];
            let u = if l2 > 0.0 {
                (((q[0] - prev[0]) * d[0] + (q[1] - prev[1]) * d[1]) / l2).clamp(0.0, 1.0)
            } else {
                0.0
            };
            let dist = (q[0] - prev[0] - u * d[0]).hypot(q[1] - prev[1] - u * d[1]);
            if dist < best.1 {
                best = (s0 + u * (s1 - s0), dist);
            }
            prev = cur;
        }
        let mut s = best.0;
        for _ in 0..3 {
            let (p, h) = self.eval(s);
            s = (s + (q[0] - p[0]) * h.cos() + (q[1] - p[1]) * h.sin()).clamp(0.0, self.length);
        }
        let (p, h) = self.eval(s);
        (s, -(q[0] - p[0]) * h.sin() + (q[1] - p[1]) * h.cos())
    }
}

// ---------------------------------------------------------------------------------------------
// Fitting.

fn dist_to_segment(q: [f64; 2], a: [f64; 2], b: [f64; 2]) -> f64 {
    let d = [b[0] - a[0], b[1] - a[1]];
    let l2 = d[0] * d[0] + d[1] * d[1];
    let u = if l2 > 0.0 { (((q[0] - a[0]) * d[0] + (q[1] - a[1]) * d[1]) / l2).clamp(0.0, 1.0) } else { 0.0 };
    (q[0] - a[0] - u * d[0]).hypot(q[1] - a[1] - u * d[1])
}

fn mid(a: [f64; 2], b: [f64; 2]) -> [f64; 2] {
    [(a[0] + b[0]) / 2.0, (a[1] + b[1]) / 2.0]
}

/// Solves the square system `a x = b` (Gaussian elimination, partial pivoting).
fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Option<Vec<f64>> {
    let n = b.len();
    for c in 0..n {
        let p = (c..n).max_by(|&i, &j| a[i][c].abs().total_cmp(&a[j][c].abs()))?;
        if a[p][c].abs() < 1e-14 {
            return None;
        }
        a.swap(c, p);
        b.swap(c, p);
        for r in c + 1..n {
            let f = a[r][c] / a[c][c];
            let (top, bottom) = a.split_at_mut(r);
            for (x, y) in bottom[0][c..].iter_mut().zip(&top[c][c..]) {
                *x -= f * y;
            }
            b[r] -= f * b[c];
        }
    }
    let mut x = vec![0.0; n];
    for r in (0..n).rev() {
        x[r] = (b[r] - (r + 1..n).map(|k| a[r][k] * x[k]).sum::<f64>()) / a[r][r];
    }
    Some(x)
}

/// Least-squares polynomial `y ≈ Σ c_k x^k` over the given powers (`powers` ascending).
fn lsq(xs: &[f64], ys: &[f64], powers: &[i32]) -> Option<Vec<f64>> {
    let scale = xs.iter().fold(0.0f64, |m, x| m.max(x.abs())).max(1e-9);
    let n = powers.len();
    let mut a = vec![vec![0.0; n]; n];
    let mut b = vec![0.0; n];
    for (x, y) in xs.iter().zip(ys) {
        let t = x / scale;
        let f: Vec<f64> = powers.iter().map(|&k| t.powi(k)).collect();
        for i in 0..n {
            b[i] += f[i] * y;
            for j in 0..n {
                a[i][j] += f[i] * f[j];
            }
        }
    }
    let c = solve(a, b)?;
    Some(c.iter().zip(powers).map(|(c, &k)| c / scale.powi(k)).collect())
}

/// Piecewise cubic `v(s)` within `tol`: (start station, `[a, b, c, d]` in `ds` from it).
fn fit_piecewise_cubic(s: &[f64], v: &[f64], tol: f64) -> Vec<(f64, [f64; 4])> {
    let n = s.len();
    if n == 0 {
        return Vec::new();
    }
    if n == 1 {
        return vec![(s[0], [v[0], 0.0, 0.0, 0.0])];
    }
    let fit = |a: usize, b: usize| -> Option<[f64; 4]> {
        let xs: Vec<f64> = s[a..=b].iter().map(|x| x - s[a]).collect();
        let deg = (b - a).min(3) as i32;
        let c = lsq(&xs, &v[a..=b], &(0..=deg).collect::<Vec<_>>())?;
        let mut out = [0.0; 4];
        out[..c.len()].copy_from_slice(&c);
        let ok = xs.iter().zip(&v[a..=b]).all(|(x, y)| (cubic(&out, *x) - y).abs() <= tol);
        ok.then_some(out)
    };
    let mut out = Vec::new();
    let mut a = 0;
    while a + 1 < n {
        let mut best = (a + 1, fit(a, a + 1).unwrap_or([v[a], 0.0, 0.0, 0.0]));
        let mut b = a + 2;
        while b < n {
            match fit(a, b) {
                Some(c) => best = (b, c),
                None => break,
            }
            b += 1;
        }
        out.push((s[a], best.1));
        a = best.0;
    }
    out
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Line,
    Arc,
    Poly,
}

/// One geometry starting at `start` with heading `hdg` (rad) through `pts[1..]` (`pts[0]` is
/// the source vertex `start` approximates), or `None` when it does not stay within `tol` of
/// the polyline. Its end is the foot of the last vertex.
fn try_fit(kind: Kind, start: [f64; 2], hdg: f64, pts: &[[f64; 2]], tol: f64) -> Option<Piece> {
    // Everything in the frame of the start: u along the heading, v to its left.
    let local: Vec<[f64; 2]> = pts.iter().map(|q| rot([q[0] - start[0], q[1] - start[1]], -hdg)).collect();
    let last = *local.last()?;
    if last[0] <= 1e-6 {
        return None;
    }
    let mids: Vec<[f64; 2]> = local.windows(2).map(|w| mid(w[0], w[1])).collect();
    let checked = || local[1..].iter().chain(&mids);
    let piece = |length: f64, shape: Shape| Piece { s: 0.0, x: start[0], y: start[1], hdg, length, shape };
    match kind {
        Kind::Line => {
            let length = last[0];
            let ok = checked().all(|q| dist_to_segment(*q, [0.0, 0.0], [length, 0.0]) <= tol);
            ok.then(|| piece(length, Shape::Line))
        }
        Kind::Arc => {
            if local.len() < 3 {
                return None;
            }
            // Circles tangent to the u axis at the origin: u² + v² = 2 v / k. Least squares in
            // k of v = k (u² + v²) / 2 over the vertices.
            let (mut swy, mut sww) = (0.0, 0.0);
            for q in &local[1..] {
                let w = (q[0] * q[0] + q[1] * q[1]) / 2.0;
                swy += w * q[1];
                sww += w * w;
            }
            if sww <= 0.0 {
                return None;
            }
            let k = swy / sww;
            if !(k.is_finite() && k.abs() > 1e-5) {
                return None;
            }
            let c = [0.0, 1.0 / k];
            // Arc length from the start to the foot of q (inscribed-angle theorem).
            let along = |q: &[f64; 2]| 2.0 * q[1].atan2(q[0]) / k;
            let length = along(&last);
            if !(length > 0.0 && (k * length).abs() <= PI) {
                return None;
            }
            let ok = checked().all(|q| {
                let a = along(q);
                ((q[0] - c[0]).hypot(q[1] - c[1]) - 1.0 / k.abs()).abs() <= tol
                    && a >= -tol
                    && a <= length + tol
            });
            ok.then(|| piece(length, Shape::Arc { curvature: k }))
        }
        Kind::Poly => {
            if local.len() < 4 {
                return None;
            }
            let mut cum = vec![0.0];
            for w in local.windows(2) {
                cum.push(cum[cum.len() - 1] + (w[1][0] - w[0][0]).hypot(w[1][1] - w[0][1]));
            }
            let total = cum[cum.len() - 1];
            let t: Vec<f64> = cum.iter().map(|c| c / total).collect();
            let us: Vec<f64> = local[1..].iter().map(|q| q[0]).collect();
            let vs: Vec<f64> = local[1..].iter().map(|q| q[1]).collect();
            // u = b p + c p² + d p³; v = c p² + d p³ (tangent along the heading at p = 0).
            let cu = lsq(&t[1..], &us, &[1, 2, 3])?;
            let cv = lsq(&t[1..], &vs, &[2, 3])?;
            let u = [0.0, cu[0], cu[1], cu[2]];
            let v = [0.0, 0.0, cv[0], cv[1]];
            if (0..=8).any(|i| dcubic(&u, i as f64 / 8.0) <= 0.0) {
                return None;
            }
            // Distance from q to the curve, Newton from parameter p.
            let dist = |q: [f64; 2], mut p: f64| -> f64 {
                for _ in 0..4 {
                    let r = [cubic(&u, p) - q[0], cubic(&v, p) - q[1]];
                    let d1 = [dcubic(&u, p), dcubic(&v, p)];
                    let d2 = [ddcubic(&u, p), ddcubic(&v, p)];
                    let f = r[0] * d1[0] + r[1] * d1[1];
                    let fp = d1[0] * d1[0] + d1[1] * d1[1] + r[0] * d2[0] + r[1] * d2[1];
                    if fp.abs() < 1e-12 {
                        break;
                    }
                    p = (p - f / fp).clamp(0.0, 1.0);
                }
                (cubic(&u, p) - q[0]).hypot(cubic(&v, p) - q[1])
            };
            // Source vertices and segment midpoints to the curve; curve midpoints to the segments.
            let ok = (1..local.len()).all(|m| dist(local[m], t[m]) <= tol)
                && (0..local.len() - 1).all(|m| {
                    let tm = (t[m] + t[m + 1]) / 2.0;
                    let at = [cubic(&u, tm), cubic(&v, tm)];
                    dist(mids[m], tm) <= tol && dist_to_segment(at, local[m], local[m + 1]) <= tol
                });
            if !ok {
                return None;
            }
            let table = poly_table(&u, &v);
            Some(piece(table[TABLE_N], Shape::Poly { u, v, table }))
        }
    }
}

/// Heading (rad) of a polyline at vertex `j`: chord headings interpolated by their lengths
/// (exact on a circle through three consecutive vertices).
fn tangent(pts: &[[f64; 2]], j: usize) -> f64 {
    let chord =
        |a: [f64; 2], b: [f64; 2]| ((b[1] - a[1]).atan2(b[0] - a[0]), (b[0] - a[0]).hypot(b[1] - a[1]));
    let n = pts.len();
    if n < 3 {
        return chord(pts[0], pts[n - 1]).0;
    }
    if j == 0 {
        let ((c01, d1), (c12, d2)) = (chord(pts[0], pts[1]), chord(pts[1], pts[2]));
        return c01 - wrap(c12 - c01) * d1 / (d1 + d2);
    }
    if j == n - 1 {
        let ((ca, da), (cb, db)) = (chord(pts[n - 3], pts[n - 2]), chord(pts[n - 2], pts[n - 1]));
        return cb + wrap(cb - ca) * db / (da + db);
    }
    let ((ca, da), (cb, db)) = (chord(pts[j - 1], pts[j]), chord(pts[j], pts[j + 1]));
    ca + wrap(cb - ca) * da / (da + db)
}

/// Lines, arcs and paramPoly3 through a polyline, each within `tol` of it and each ending
/// within `heading_tol` (rad) of the polyline's tangent at its last vertex. Pieces join in
/// position and heading: each starts where the previous one ends, along its end heading; the
/// first starts at the first vertex along the polyline's tangent there.
fn fit_reference(pts: &[[f64; 2]], tol: f64, heading_tol: f64) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut start = pts[0];
    let mut hdg = tangent(pts, 0);
    let mut i = 0;
    let mut reset_at: Option<usize> = None;
    while i + 1 < pts.len() {
        let mut best: Option<(usize, Piece)> = None;
        for kind in [Kind::Line, Kind::Arc, Kind::Poly] {
            let min_j = i + match kind {
                Kind::Line => 1,
                Kind::Arc => 2,
                Kind::Poly => 3,
            };
            let mut reach: Option<(usize, Piece)> = None;
            let mut j = min_j;
            while j < pts.len() {
                // The tangent at the last vertex is extrapolated, the least reliable: there the
                // position check alone decides.
                let fit = try_fit(kind, start, hdg, &pts[i..=j], tol).filter(|p| {
                    j + 1 == pts.len() || wrap(p.eval(p.length).1 - tangent(pts, j)).abs() <= heading_tol
                });
                match fit {
                    Some(p) => reach = Some((j, p)),
                    None if reach.is_some() => break,
                    None => {}
                }
                // A kind that cannot fit a few vertices past its minimum will not fit more.
                if reach.is_none() && j > min_j + 2 {
                    break;
                }
                j += 1;
            }
            if let Some((j, p)) = reach
                && best.as_ref().is_none_or(|b| j > b.0)
            {
                best = Some((j, p));
            }
        }
        let (j, piece) = match best {
            Some(b) => b,
            // Nothing fits along the current heading (a kink sharper than the tolerance
            // allows): restart the heading along the next segment, a reported heading jump.
            None => {
                let q = pts[i + 1];
                let (d, h) =
                    ((q[0] - start[0]).hypot(q[1] - start[1]), (q[1] - start[1]).atan2(q[0] - start[0]));
                let along = (q[0] - start[0]) * hdg.cos() + (q[1] - start[1]) * hdg.sin();
                if d < 1e-6 {
                    i += 1;
                } else if i + 2 == pts.len() && !out.is_empty() && along > 0.0 {
                    // Only the last vertex is left and it sits off the line's continuation (a
                    // kink at the very end): run on along the heading to its foot rather than
                    // turn the road's end, which would skew the lane ends; the offset is
                    // measured like any other.
                    let piece =
                        Piece { s: 0.0, x: start[0], y: start[1], hdg, length: along, shape: Shape::Line };
                    out.push(piece);
                    break;
                } else if reset_at == Some(i) {
                    // Even along the segment nothing fits: a plain line to the next vertex.
                    let piece =
                        Piece { s: 0.0, x: start[0], y: start[1], hdg: h, length: d, shape: Shape::Line };
                    out.push(piece);
                    (start, hdg, i) = (q, h, i + 1);
                } else {
                    reset_at = Some(i);
                    hdg = h;
                }
                continue;
            }
        };
        let (end, h) = piece.eval(piece.length);
        out.push(piece);
        start = end;
        hdg = h;
        i = j;
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Roads.

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum End {
    Start,
    End,
}

#[derive(Debug, Clone, PartialEq)]
enum RoadLink {
    Road(usize, End),
    Junction(usize),
}

struct RoadLane {
    /// Index into `layout.lanes`.
    lane: usize,
    id: i32,
    /// Travels along `s`; `None` for two-way lanes.
    with_s: Option<bool>,
    widths: Vec<(f64, [f64; 4])>,
    predecessors: Vec<i32>,
    successors: Vec<i32>,
}

struct Road {
    id: u32,
    /// Index into the junction list.
    junction: Option<usize>,
    line: RefLine,
    elevation: Vec<(f64, [f64; 4])>,
    /// Left to right (in `s` direction).
    lanes: Vec<RoadLane>,
    /// Boundaries left to right: id, whether its stored direction is along `s`.
    boundaries: Vec<(ElementId, bool)>,
    /// Index of the reference boundary in `boundaries` (= number of left lanes).
    r: usize,
    links: BTreeMap<End, RoadLink>,
    objects: Vec<String>,
}

impl Road {
    /// Signed offsets (left positive) of every boundary at station `s`, as written.
    fn offsets(&self, s: f64) -> Vec<f64> {
        let mut t = vec![0.0; self.boundaries.len()];
        for j in (0..self.r).rev() {
            t[j] = t[j + 1] + poly_at(&self.lanes[j].widths, s);
        }
        for j in self.r..self.lanes.len() {
            t[j + 1] = t[j] - poly_at(&self.lanes[j].widths, s);
        }
        t
    }

    fn height(&self, s: f64) -> f64 {
        poly_at(&self.elevation, s)
    }
}

fn poly_at(p: &[(f64, [f64; 4])], s: f64) -> f64 {
    if p.is_empty() {
        return 0.0;
    }
    let i = p.partition_point(|(s0, _)| *s0 <= s).clamp(1, p.len()) - 1;
    cubic(&p[i].1, s - p[i].0)
}

fn arc_lengths(p: &[[f64; 2]]) -> Vec<f64> {
    let mut s = vec![0.0];
    for w in p.windows(2) {
        s.push(s[s.len() - 1] + (w[1][0] - w[0][0]).hypot(w[1][1] - w[0][1]));
    }
    s
}

/// Arc length of the foot of `q` on a polyline.
fn station_on(p: &[[f64; 2]], s: &[f64], q: [f64; 2]) -> f64 {
    let mut best = (0.0, f64::INFINITY);
    for (i, w) in p.windows(2).enumerate() {
        let d = dist_to_segment(q, w[0], w[1]);
        if d < best.1 {
            let l = s[i + 1] - s[i];
            let u = if l > 0.0 {
                (((q[0] - w[0][0]) * (w[1][0] - w[0][0]) + (q[1] - w[0][1]) * (w[1][1] - w[0][1])) / (l * l))
                    .clamp(0.0, 1.0)
            } else {
                0.0
            };
            best = (s[i] + u * l, d);
        }
    }
    best.0
}

/// The part of a 3D polyline between arc lengths `a` < `b` (horizontal arc length).
fn cut(p: &[[f64; 3]], a: f64, b: f64) -> Vec<[f64; 3]> {
    let xy: Vec<[f64; 2]> = p.iter().map(|q| [q[0], q[1]]).collect();
    let s = arc_lengths(&xy);
    let at = |x: f64| -> [f64; 3] {
        let i = s.partition_point(|v| *v <= x).clamp(1, s.len() - 1) - 1;
        let l = s[i + 1] - s[i];
        let u = if l > 0.0 { ((x - s[i]) / l).clamp(0.0, 1.0) } else { 0.0 };
        [0, 1, 2].map(|k| p[i][k] + (p[i + 1][k] - p[i][k]) * u)
    };
    let mut out = vec![at(a)];
    for (i, q) in p.iter().enumerate() {
        if s[i] > a + 1e-3 && s[i] < b - 1e-3 {
            out.push(*q);
        }
    }
    out.push(at(b));
    out
}

/// Offset (left positive) where the normal at `p` (unit `n`) crosses a polyline, the crossing
/// nearest `guess`; end segments are extended by `margin` metres.
fn normal_hit(poly: &[[f64; 2]], p: [f64; 2], n: [f64; 2], guess: f64, margin: f64) -> Option<f64> {
    let mut best: Option<f64> = None;
    let last = poly.len().saturating_sub(2);
    for (i, w) in poly.windows(2).enumerate() {
        let d = [w[1][0] - w[0][0], w[1][1] - w[0][1]];
        let len = d[0].hypot(d[1]);
        if len < 1e-9 {
            continue;
        }
        let det = -n[0] * d[1] + n[1] * d[0];
        if det.abs() < 1e-12 {
            continue;
        }
        let r = [w[0][0] - p[0], w[0][1] - p[1]];
        let t = (-r[0] * d[1] + r[1] * d[0]) / det;
        let u = (n[0] * r[1] - n[1] * r[0]) / det;
        let lo = if i == 0 { -margin / len } else { -1e-9 };
        let hi = if i == last { 1.0 + margin / len } else { 1.0 + 1e-9 };
        if u >= lo && u <= hi && best.is_none_or(|b| (t - guess).abs() < (b - guess).abs()) {
            best = Some(t);
        }
    }
    best
}

fn pts_first(p: &[[f64; 3]]) -> [f64; 2] {
    [p[0][0], p[0][1]]
}

fn lane_type(kind: LaneKind) -> &'static str {
    match kind {
        LaneKind::Road | LaneKind::Highway | LaneKind::PlayStreet => "driving",
        LaneKind::BusLane => "bus",
        LaneKind::BicycleLane => "biking",
        LaneKind::EmergencyLane => "stop",
        LaneKind::Exit => "exit",
        LaneKind::Walkway | LaneKind::SharedWalkway | LaneKind::Crosswalk | LaneKind::Stairs => "sidewalk",
        LaneKind::Rail => "rail",
    }
}

fn color_name(c: MarkingColor) -> &'static str {
    match c {
        MarkingColor::White => "white",
        MarkingColor::Yellow => "yellow",
        MarkingColor::Blue => "blue",
    }
}

/// A number as OpenDRIVE XML wants it: shortest text that reads back as the same f64.
fn num(v: f64) -> String {
    let v = if v == 0.0 { 0.0 } else { v };
    if v == 0.0 || (1e-4..1e15).contains(&v.abs()) { format!("{v}") } else { format!("{v:e}") }
}

/// The `<roadMark>` of a boundary: `bdir` whether its stored direction is along `s`;
/// `outward_left` for borders of left lanes (OpenDRIVE names double lines from the inside out,
/// the centre lane's from left to right).
fn road_mark(layout: &RoadLayout, id: ElementId, bdir: bool, outward_left: bool) -> String {
    if let Some(b) = layout.lane_boundaries.iter().find(|b| b.id == id) {
        // (left, right) lines in the boundary's stored direction.
        let (l, r) = match b.line_type {
            LineType::Solid => ("solid", ""),
            LineType::Dashed => ("broken", ""),
            LineType::DoubleSolid => ("solid", "solid"),
            LineType::DoubleDashed => ("broken", "broken"),
            LineType::DashedSolid => ("broken", "solid"),
            LineType::SolidDashed => ("solid", "broken"),
            LineType::Virtual => ("none", ""),
        };
        let (l, r) = if r.is_empty() || bdir != outward_left { (l, r) } else { (r, l) };
        let ty = if r.is_empty() { l.to_string() } else { format!("{l} {r}") };
        // Crossing from the left lane to the right one lowers the lane id.
        let (from_left, from_right) = b.line_type.crossing_allowed();
        let (l2r, r2l) = if bdir { (from_left, from_right) } else { (from_right, from_left) };
        let change = match (l2r, r2l) {
            (true, true) => "both",
            (true, false) => "decrease",
            (false, true) => "increase",
            (false, false) => "none",
        };
        if b.line_type == LineType::Virtual {
            return format!("<roadMark sOffset=\"0\" type=\"none\" laneChange=\"{change}\"/>");
        }
        return format!(
            "<roadMark sOffset=\"0\" type=\"{ty}\" weight=\"standard\" color=\"{}\" width=\"{}\" laneChange=\"{change}\"/>",
            color_name(b.color),
            num(b.width_m)
        );
    }
    let ty = match layout.road_edges.iter().find(|e| e.id == id).map(|e| e.kind) {
        Some(EdgeKind::Curb { .. }) => "curb",
        _ => "none",
    };
    format!("<roadMark sOffset=\"0\" type=\"{ty}\" laneChange=\"none\"/>")
}

/// Union–find over lane indices.
fn root(parent: &mut [usize], mut i: usize) -> usize {
    while parent[i] != i {
        parent[i] = parent[parent[i]];
        i = parent[i];
    }
    i
}

/// Writes `layout` as an OpenDRIVE 1.8 file at `path`, atomically.
///
/// Coordinates are written in the layout's projected CRS relative to its origin (the header
/// says both). Findings the map can live with (a successor that cannot be linked, a lane that
/// fits worse than [`OpenDriveConfig::max_fit_error_m`], a lane group that is not a simple
/// cross-section) go to `issues` and the summary; a lane whose boundary is missing, or a CRS
/// GDAL does not know, is an error.
///
/// ```no_run
/// # fn demo(layout: &hdmap_core::RoadLayout) -> Result<(), hdmap_export::ExportError> {
/// let mut issues = hdmap_core::Issues::new();
/// let cfg = hdmap_export::OpenDriveConfig::default();
/// let summary = hdmap_export::write_opendrive(std::path::Path::new("map.xodr"), layout, &cfg, &mut issues)?;
/// assert!(summary.max_boundary_error_m <= cfg.max_fit_error_m);
/// # Ok(()) }
/// ```
pub fn write_opendrive(
    path: &Path,
    layout: &RoadLayout,
    cfg: &OpenDriveConfig,
    issues: &mut Issues,
) -> Result<OpenDriveSummary, ExportError> {
    cfg.validate()?;
    let wkt = hdmap_io::crs::wkt_for_epsg(layout.origin.epsg).ok_or_else(|| {
        ExportError::Projection(format!("EPSG:{} is not known to GDAL: no geoReference", layout.origin.epsg))
    })?;
    let o = layout.origin.origin;
    let loc = |p: &Point3<f64>| [p.x - o[0], p.y - o[1], p.z - o[2]];
    let xy = |p: &[[f64; 3]]| -> Vec<[f64; 2]> { p.iter().map(|q| [q[0], q[1]]).collect() };
    let tol = cfg.max_fit_error_m;
    let mut summary = OpenDriveSummary::default();

    // Boundary polylines (local), by id.
    let mut bounds: BTreeMap<ElementId, Vec<[f64; 3]>> = BTreeMap::new();
    for b in &layout.lane_boundaries {
        bounds.insert(b.id, b.points.iter().map(loc).collect());
    }
    for e in &layout.road_edges {
        bounds.insert(e.id, e.points.iter().map(loc).collect());
    }
    for lane in &layout.lanes {
        for r in [lane.left, lane.right] {
            if bounds.get(&r.id).is_none_or(|p| p.len() < 2) {
                return Err(ExportError::Layout(format!(
                    "lane {}: boundary {} is missing or has < 2 points",
                    lane.id, r.id
                )));
            }
        }
        if lane.center_line.len() < 2 {
            return Err(ExportError::Layout(format!("lane {}: centre line has < 2 points", lane.id)));
        }
    }

    // 1. Lane groups: lanes joined across a boundary that has exactly one lane on each side.
    let n = layout.lanes.len();
    let mut sides: BTreeMap<ElementId, [Vec<usize>; 2]> = BTreeMap::new();
    for (i, lane) in layout.lanes.iter().enumerate() {
        for (is_left, r) in [(true, lane.left), (false, lane.right)] {
            // Whether the lane lies left of the boundary's stored direction.
            let lies_left = is_left == r.reversed;
            sides.entry(r.id).or_default()[usize::from(lies_left)].push(i);
        }
    }
    let mut parent: Vec<usize> = (0..n).collect();
    let mut partner: BTreeMap<(usize, ElementId), usize> = BTreeMap::new();
    for (id, [right, left]) in &sides {
        if let ([a], [b]) = (left.as_slice(), right.as_slice()) {
            let (ra, rb) = (root(&mut parent, *a), root(&mut parent, *b));
            parent[ra.max(rb)] = ra.min(rb);
            partner.insert((*a, *id), *b);
            partner.insert((*b, *id), *a);
        }
    }
    let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for i in 0..n {
        let r = root(&mut parent, i);
        groups.entry(r).or_default().push(i);
    }

    // 2. Order each group across (left to right along a reference direction).
    // (lane index, travels along the reference direction)
    type Chain = Vec<(usize, bool)>;
    let lane_refs = |i: usize, with: bool| {
        let l = &layout.lanes[i];
        if with { (l.left, l.right) } else { (l.right, l.left) }
    };
    let mut chains: Vec<Chain> = Vec::new();
    for members in groups.values() {
        let seed = members[0];
        let mut chain: Chain = vec![(seed, true)];
        for go_left in [true, false] {
            let (mut cur, mut with) = (seed, true);
            let mut seen: BTreeSet<usize> = BTreeSet::from([seed]);
            loop {
                let (rl, rr) = lane_refs(cur, with);
                let r = if go_left { rl } else { rr };
                let Some(&next) = partner.get(&(cur, r.id)) else { break };
                if !seen.insert(next) {
                    break;
                }
                // Whether the shared boundary's stored direction runs along the reference.
                let bdir = r.reversed != with;
                let nl = &layout.lanes[next];
                let rn = if nl.left.id == r.id { nl.left } else { nl.right };
                let nwith = rn.reversed != bdir;
                let (nl_ref, nr_ref) = lane_refs(next, nwith);
                if (if go_left { nr_ref.id } else { nl_ref.id }) != r.id {
                    break;
                }
                if go_left {
                    chain.insert(0, (next, nwith));
                } else {
                    chain.push((next, nwith));
                }
                cur = next;
                with = nwith;
            }
        }
        if chain.len() == members.len() {
            chains.push(chain);
        } else {
            let ids: Vec<String> = members.iter().map(|&i| layout.lanes[i].id.to_string()).collect();
            issues.warn(
                format!("lane {}", layout.lanes[seed].id),
                format!(
                    "lanes {} share boundaries but are not one cross-section: one road per lane",
                    ids.join(", ")
                ),
            );
            chains.extend(members.iter().map(|&i| vec![(i, true)]));
        }
    }

    // 3. Build one road per chain.
    let mut roads: Vec<Road> = Vec::new();
    let mut lane_pos: BTreeMap<usize, (usize, usize)> = BTreeMap::new();
    for chain in chains {
        // Reference direction and split: left lanes travel against it, right lanes along it.
        let split = |c: &Chain| -> Option<usize> {
            (0..=c.len()).find(|&r| {
                c.iter()
                    .enumerate()
                    .all(|(j, &(li, with))| layout.lanes[li].bidirectional || (with == (j >= r)))
            })
        };
        let flipped: Chain = chain.iter().rev().map(|&(l, w)| (l, !w)).collect();
        let (chain, r) = match (split(&chain), split(&flipped)) {
            (Some(a), Some(b)) if b < a => (flipped, b),
            (Some(a), _) => (chain, a),
            (None, Some(b)) => (flipped, b),
            (None, None) => (chain, 0),
        };
        // Boundaries left to right with their direction along the reference.
        let mut bl: Vec<(ElementId, bool)> = Vec::new();
        for (k, &(li, with)) in chain.iter().enumerate() {
            let (l, rr) = lane_refs(li, with);
            if k == 0 {
                bl.push((l.id, l.reversed != with));
            }
            bl.push((rr.id, rr.reversed != with));
        }
        let (ref_id, ref_dir) = bl[r];
        let mut ref3 = bounds[&ref_id].clone();
        if !ref_dir {
            ref3.reverse();
        }
        let ref2 = xy(&ref3);
        let ref_s = arc_lengths(&ref2);
        let (mut s0, mut s1) = (f64::INFINITY, f64::NEG_INFINITY);
        for &(li, _) in &chain {
            let c = &layout.lanes[li].center_line;
            for p in [&c[0], &c[c.len() - 1]] {
                let q = loc(p);
                let s = station_on(&ref2, &ref_s, [q[0], q[1]]);
                s0 = s0.min(s);
                s1 = s1.max(s);
            }
        }
        let names: Vec<String> = chain.iter().map(|&(li, _)| layout.lanes[li].id.to_string()).collect();
        if s1 - s0 < 0.1 {
            for &(li, _) in &chain {
                summary.skipped.push(Skipped {
                    element: format!("lane {}", layout.lanes[li].id),
                    reason: format!(
                        "its group ({}) spans {:.3} m of its reference boundary",
                        names.join(", "),
                        s1 - s0
                    ),
                });
            }
            continue;
        }
        let ref_cut = cut(&ref3, s0, s1);
        // Vertices closer than 10 cm carry no shape, only noise in the tangents the fit
        // checks its heading against (a cut lands next to a source vertex).
        let all = xy(&ref_cut);
        let mut pts2 = vec![all[0]];
        for q in &all[1..] {
            let close = |p: &[f64; 2]| (q[0] - p[0]).hypot(q[1] - p[1]) < 0.1;
            if pts2.last().is_some_and(close) {
                if std::ptr::eq(q, &all[all.len() - 1]) && pts2.len() > 1 {
                    pts2.pop();
                    pts2.push(*q);
                }
            } else {
                pts2.push(*q);
            }
        }
        // Lateral extent of the group: a heading error δ at the road's ends moves its outer
        // borders by extent·δ along the road.
        let extent = bl
            .iter()
            .map(|(id, _)| {
                let p = xy(&bounds[id]);
                p.windows(2)
                    .map(|w| dist_to_segment(pts_first(&ref_cut), w[0], w[1]))
                    .fold(f64::INFINITY, f64::min)
            })
            .fold(1.0f64, f64::max);
        let line = RefLine::new(fit_reference(&pts2, 0.8 * tol, 0.5 * tol / extent));
        for w in line.pieces.windows(2) {
            let (_, h_end) = w[0].eval(w[0].length);
            summary.max_heading_jump_deg =
                summary.max_heading_jump_deg.max(wrap(w[1].hdg - h_end).abs().to_degrees());
        }

        // Elevation from the reference boundary's heights.
        let mut z: Vec<(f64, f64)> = ref_cut.iter().map(|q| (line.project([q[0], q[1]]).0, q[2])).collect();
        z.sort_by(|a, b| a.0.total_cmp(&b.0));
        z.dedup_by(|a, b| (a.0 - b.0).abs() < 1e-6);
        let (zs, zv): (Vec<f64>, Vec<f64>) = z.into_iter().unzip();
        let elevation = fit_piecewise_cubic(&zs, &zv, 0.8 * tol);

        // Boundary offsets along the written reference line's normals.
        let steps = (line.length / cfg.width_step_m).ceil().max(1.0) as usize;
        let stations: Vec<f64> = (0..=steps).map(|k| line.length * k as f64 / steps as f64).collect();
        let mut offsets: Vec<Vec<Option<f64>>> = vec![vec![None; stations.len()]; bl.len()];
        for (j, (id, _)) in bl.iter().enumerate() {
            if j == r {
                offsets[j] = vec![Some(0.0); stations.len()];
                continue;
            }
            let poly = xy(&bounds[id]);
            let (p0, h0) = line.eval(0.0);
            let ps = arc_lengths(&poly);
            let foot = station_on(&poly, &ps, p0);
            let fp = cut(&bounds[id], foot, foot)[0];
            let mut guess = -(fp[0] - p0[0]) * h0.sin() + (fp[1] - p0[1]) * h0.cos();
            for (k, &s) in stations.iter().enumerate() {
                let (p, h) = line.eval(s);
                let t = normal_hit(&poly, p, [-h.sin(), h.cos()], guess, 1.0);
                if let Some(t) = t {
                    guess = t;
                }
                offsets[j][k] = t;
            }
        }
        let mut road = Road {
            id: roads.len() as u32 + 1,
            junction: None,
            line,
            elevation,
            lanes: Vec::new(),
            boundaries: bl.clone(),
            r,
            links: BTreeMap::new(),
            objects: Vec::new(),
        };
        road.lanes = chain
            .iter()
            .enumerate()
            .map(|(j, &(li, with))| RoadLane {
                lane: li,
                id: if j < r { (r - j) as i32 } else { -((j - r + 1) as i32) },
                with_s: (!layout.lanes[li].bidirectional).then_some(with),
                widths: Vec::new(),
                predecessors: Vec::new(),
                successors: Vec::new(),
            })
            .collect();
        // Widths from the inside out, each against its inner border as written.
        let order: Vec<usize> = (0..r).rev().chain(r..chain.len()).collect();
        for j in order {
            let (inner, outer) = if j < r { (j + 1, j) } else { (j, j + 1) };
            let (mut ws, mut wv) = (Vec::new(), Vec::new());
            let mut missing = 0;
            for (k, &s) in stations.iter().enumerate() {
                let Some(t) = offsets[outer][k] else {
                    missing += 1;
                    continue;
                };
                let t_in = road.offsets(s)[inner];
                ws.push(s);
                wv.push((t - t_in).abs());
            }
            let lane_id = layout.lanes[chain[j].0].id;
            if ws.is_empty() {
                // Never happens for a lane whose boundaries run along it; keep the file valid.
                ws.push(0.0);
                wv.push(0.0);
                issues.warn(
                    format!("lane {lane_id}"),
                    "its outer boundary never crosses the reference line's normals: width 0",
                );
            } else if missing > 0 {
                issues.info(
                    format!("lane {lane_id}"),
                    format!(
                        "outer boundary {} missed at {missing} of {} stations: width interpolated there",
                        bl[outer].0,
                        stations.len()
                    ),
                );
            }
            road.lanes[j].widths = fit_piecewise_cubic(&ws, &wv, 0.8 * tol);
        }
        let ri = roads.len();
        for (j, &(li, _)) in chain.iter().enumerate() {
            lane_pos.insert(li, (ri, j));
        }
        roads.push(road);
    }

    // 4. Topology. Connections (from lane, at its road's end) → (successor, at its road's end).
    let is_connecting = |road: &Road| road.lanes.iter().all(|l| layout.lanes[l.lane].in_intersection);
    let lane_index: BTreeMap<ElementId, usize> =
        layout.lanes.iter().enumerate().map(|(i, l)| (l.id, i)).collect();
    struct Conn {
        from: (usize, End, usize),
        to: (usize, End, usize),
    }
    let mut conns: Vec<Conn> = Vec::new();
    for (li, lane) in layout.lanes.iter().enumerate() {
        for succ in &lane.successors {
            let reason =
                |r: &str| UnconnectedSuccessor { lane: lane.id, successor: *succ, reason: r.to_string() };
            let Some(&mi) = lane_index.get(succ) else { continue };
            let (Some(&(g, a)), Some(&(h, b))) = (lane_pos.get(&li), lane_pos.get(&mi)) else {
                summary.unconnected_successors.push(reason("a lane of the pair was not written"));
                continue;
            };
            let (Some(lw), Some(mw)) = (roads[g].lanes[a].with_s, roads[h].lanes[b].with_s) else {
                summary.unconnected_successors.push(reason("two-way lane: no direction to link along"));
                continue;
            };
            conns.push(Conn {
                from: (g, if lw { End::End } else { End::Start }, li),
                to: (h, if mw { End::Start } else { End::End }, mi),
            });
        }
    }
    // Junctions: connecting roads meeting the same road end belong together.
    let nr = roads.len();
    let mut jparent: Vec<usize> = (0..nr).collect();
    let mut at_end: BTreeMap<(usize, End), BTreeSet<(usize, End)>> = BTreeMap::new();
    for c in &conns {
        at_end.entry((c.from.0, c.from.1)).or_default().insert((c.to.0, c.to.1));
        at_end.entry((c.to.0, c.to.1)).or_default().insert((c.from.0, c.from.1));
    }
    for (&(g, _), partners) in &at_end {
        if is_connecting(&roads[g]) {
            continue;
        }
        let conn: Vec<usize> = partners.iter().map(|p| p.0).filter(|&h| is_connecting(&roads[h])).collect();
        for w in conn.windows(2) {
            let (a, b) = (root(&mut jparent, w[0]), root(&mut jparent, w[1]));
            jparent[a.max(b)] = a.min(b);
        }
    }
    let mut junction_of_root: BTreeMap<usize, usize> = BTreeMap::new();
    let connecting: Vec<bool> = roads.iter().map(is_connecting).collect();
    for (g, road) in roads.iter_mut().enumerate() {
        if connecting[g] {
            let rt = root(&mut jparent, g);
            let next = junction_of_root.len();
            let j = *junction_of_root.entry(rt).or_insert(next);
            road.junction = Some(j);
        }
    }
    let n_junctions = junction_of_root.len();
    // Road links.
    for (&(g, e), partners) in &at_end {
        let link = if roads[g].junction.is_some() {
            match partners.iter().collect::<Vec<_>>().as_slice() {
                [(h, f)] if roads[*h].junction.is_none() => Some(RoadLink::Road(*h, *f)),
                _ => None,
            }
        } else {
            let js: BTreeSet<Option<usize>> = partners.iter().map(|p| roads[p.0].junction).collect();
            match (js.iter().collect::<Vec<_>>().as_slice(), partners.len()) {
                ([Some(j)], _) => Some(RoadLink::Junction(*j)),
                ([None], 1) => partners.first().map(|&(h, f)| RoadLink::Road(h, f)),
                _ => None,
            }
        };
        if let Some(l) = link {
            roads[g].links.insert(e, l);
        }
    }
    // Lane links and junction connections.
    // (junction, incoming road, connecting road, contact end) → lane links (from, to)
    type ConnectionKey = (usize, usize, usize, End);
    let mut connections: BTreeMap<ConnectionKey, Vec<(i32, i32)>> = BTreeMap::new();
    for c in &conns {
        let (g, e, li) = c.from;
        let (h, f, mi) = c.to;
        let (_, a) = lane_pos[&li];
        let (_, b) = lane_pos[&mi];
        let (ida, idb) = (roads[g].lanes[a].id, roads[h].lanes[b].id);
        let links_g = roads[g].links.get(&e) == Some(&RoadLink::Road(h, f));
        let links_h = roads[h].links.get(&f) == Some(&RoadLink::Road(g, e));
        let mut written = false;
        if links_g {
            let l = &mut roads[g].lanes[a];
            if e == End::End {
                l.successors.push(idb)
            } else {
                l.predecessors.push(idb)
            }
            written = true;
        }
        if links_h {
            let l = &mut roads[h].lanes[b];
            if f == End::Start {
                l.predecessors.push(ida)
            } else {
                l.successors.push(ida)
            }
            written = true;
        }
        if let (None, Some(j), true) = (roads[g].junction, roads[h].junction, links_h) {
            connections.entry((j, g, h, f)).or_default().push((ida, idb));
        }
        if !written {
            let why = if roads[g].junction.is_some() && roads[h].junction.is_some() {
                "both lanes are inside an intersection (connecting road to connecting road)"
            } else {
                "the road end meets several roads outside a junction"
            };
            summary.unconnected_successors.push(UnconnectedSuccessor {
                lane: layout.lanes[li].id,
                successor: layout.lanes[mi].id,
                reason: why.into(),
            });
        }
    }
    for u in &summary.unconnected_successors {
        issues
            .warn(format!("lane {}", u.lane), format!("successor {} not linked: {}", u.successor, u.reason));
    }

    // 5. Objects on the nearest road (not a connecting road).
    let nearest = |roads: &[Road], q: [f64; 2]| -> Option<(usize, f64, f64)> {
        roads
            .iter()
            .enumerate()
            .filter(|(_, r)| r.junction.is_none())
            .map(|(i, r)| {
                let (s, t) = r.line.project(q);
                let (p, _) = r.line.eval(s);
                (i, s, t, (q[0] - p[0]).hypot(q[1] - p[1]))
            })
            .min_by(|a, b| a.3.total_cmp(&b.3))
            .map(|(i, s, t, _)| (i, s, t))
    };
    let object = |roads: &[Road], ri: usize, s: f64, t: f64, head: &str, ring: &[[f64; 3]]| -> String {
        let road = &roads[ri];
        let (p, h) = road.line.eval(s);
        let origin = [p[0] - t * h.sin(), p[1] + t * h.cos()];
        let z0 = road.height(s);
        let mut x = format!(
            "      <object {head} s=\"{}\" t=\"{}\" zOffset=\"0\" hdg=\"0\" orientation=\"none\">\n        <outlines>\n          <outline id=\"0\" closed=\"true\">\n",
            num(s),
            num(t)
        );
        for q in ring {
            let uv = rot([q[0] - origin[0], q[1] - origin[1]], -h);
            let _ = writeln!(
                x,
                "            <cornerLocal u=\"{}\" v=\"{}\" z=\"{}\" height=\"0\"/>",
                num(uv[0]),
                num(uv[1]),
                num(q[2] - z0)
            );
        }
        x.push_str("          </outline>\n        </outlines>\n      </object>\n");
        x
    };
    let centroid = |ring: &[[f64; 3]]| {
        let n = ring.len() as f64;
        ring.iter().fold([0.0, 0.0], |a, q| [a[0] + q[0] / n, a[1] + q[1] / n])
    };
    for c in &layout.crosswalks {
        let ring: Vec<[f64; 3]> = c.polygon.iter().map(loc).collect();
        let cen = centroid(&ring);
        let Some((ri, s, t)) = nearest(&roads, cen) else {
            summary.skipped.push(Skipped {
                element: format!("crosswalk {}", c.id),
                reason: "no road to place it on".into(),
            });
            continue;
        };
        let head = format!("id=\"{}\" type=\"crosswalk\" name=\"crosswalk\"", c.id);
        let x = object(&roads, ri, s, t, &head, &ring);
        roads[ri].objects.push(x);
        summary.crosswalks += 1;
    }
    let paint: BTreeMap<ElementId, Vec<[f64; 2]>> =
        hdmap_core::layout::paint_polygons(layout, 0.0).into_iter().collect();
    for sl in &layout.stop_lines {
        let (Some(ring), false) = (paint.get(&sl.id), sl.points.is_empty()) else {
            summary.skipped.push(Skipped {
                element: format!("stop_line {}", sl.id),
                reason: "fewer than 2 points".into(),
            });
            continue;
        };
        let zm = sl.points.iter().map(|p| p.z - o[2]).sum::<f64>() / sl.points.len() as f64;
        let ring: Vec<[f64; 3]> = ring.iter().map(|q| [q[0] - o[0], q[1] - o[1], zm]).collect();
        let cen = centroid(&ring);
        // The road of a lane that ends at it, else the nearest.
        let owner = layout
            .lanes
            .iter()
            .enumerate()
            .filter(|(_, l)| l.stop_line == Some(sl.id))
            .find_map(|(i, _)| lane_pos.get(&i).map(|p| p.0))
            .filter(|&ri| roads[ri].junction.is_none());
        let placed = match owner {
            Some(ri) => {
                let (s, t) = roads[ri].line.project(cen);
                Some((ri, s, t))
            }
            None => nearest(&roads, cen),
        };
        let Some((ri, s, t)) = placed else {
            summary.skipped.push(Skipped {
                element: format!("stop_line {}", sl.id),
                reason: "no road to place it on".into(),
            });
            continue;
        };
        let head = format!("id=\"{}\" type=\"roadMark\" subtype=\"stopLine\" name=\"stopLine\"", sl.id);
        let x = object(&roads, ri, s, t, &head, &ring);
        roads[ri].objects.push(x);
        summary.stop_lines += 1;
    }

    // 6. Measure the written geometry against the source.
    let (mut b_sum, mut b_n, mut c_sum, mut c_n) = (0.0, 0usize, 0.0, 0usize);
    for road in &roads {
        let len = road.line.length;
        // Station and offset of a vertex, when its foot is inside the road.
        // Station, offset and distance past the road's end of a vertex; vertices more than
        // half a metre past an end belong to another road (a boundary longer than the road).
        let station = |q: &[f64; 3]| -> Option<(f64, f64, f64)> {
            let (s, t) = road.line.project([q[0], q[1]]);
            let (p, h) = road.line.eval(s);
            let along = (q[0] - p[0]) * h.cos() + (q[1] - p[1]) * h.sin();
            (along.abs() <= 0.5 && (0.0..=len).contains(&s)).then_some((s, t, along))
        };
        for (j, rl) in road.lanes.iter().enumerate() {
            let lane = &layout.lanes[rl.lane];
            let mut worst = 0.0f64;
            for (k, (id, _)) in road.boundaries.iter().enumerate().filter(|(k, _)| *k == j || *k == j + 1) {
                for q in &bounds[id] {
                    let Some((s, t, along)) = station(q) else { continue };
                    let e = (t - road.offsets(s)[k]).hypot(along);
                    worst = worst.max(e);
                    b_sum += e;
                    b_n += 1;
                    summary.max_boundary_error_m = summary.max_boundary_error_m.max(e);
                    if k == road.r {
                        summary.max_reference_error_m = summary.max_reference_error_m.max(e);
                    }
                    summary.max_height_error_m =
                        summary.max_height_error_m.max((q[2] - road.height(s)).abs());
                }
            }
            for p in &lane.center_line {
                let q = loc(p);
                let Some((s, t, along)) = station(&q) else { continue };
                let off = road.offsets(s);
                let e = (t - (off[j] + off[j + 1]) / 2.0).hypot(along);
                worst = worst.max(e);
                c_sum += e;
                c_n += 1;
                summary.max_center_line_error_m = summary.max_center_line_error_m.max(e);
                summary.max_height_error_m = summary.max_height_error_m.max((q[2] - road.height(s)).abs());
            }
            if worst > tol {
                issues.warn(
                    format!("lane {}", lane.id),
                    format!(
                        "written lane is {worst:.3} m from its source geometry (max_fit_error_m {tol} m)"
                    ),
                );
            }
        }
    }
    summary.mean_boundary_error_m = if b_n > 0 { b_sum / b_n as f64 } else { 0.0 };
    summary.mean_center_line_error_m = if c_n > 0 { c_sum / c_n as f64 } else { 0.0 };

    // 7. The XML.
    let (mut west, mut east, mut south, mut north) =
        (f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::NEG_INFINITY);
    for road in &roads {
        let k = (road.line.length / 1.0).ceil().max(1.0) as usize;
        for i in 0..=k {
            let (p, _) = road.line.eval(road.line.length * i as f64 / k as f64);
            west = west.min(p[0]);
            east = east.max(p[0]);
            south = south.min(p[1]);
            north = north.max(p[1]);
        }
    }
    if roads.is_empty() {
        (west, east, south, north) = (0.0, 0.0, 0.0, 0.0);
    }
    let mut x = String::with_capacity(4096 * (roads.len() + 1));
    x.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<OpenDRIVE>\n");
    let _ = writeln!(
        x,
        "  <header revMajor=\"1\" revMinor=\"8\" name=\"hdmap\" version=\"1\" vendor=\"hdmap\" north=\"{}\" south=\"{}\" east=\"{}\" west=\"{}\">",
        num(north),
        num(south),
        num(east),
        num(west)
    );
    let _ = writeln!(x, "    <geoReference><![CDATA[{}]]></geoReference>", wkt.replace("]]>", ""));
    let _ =
        writeln!(x, "    <offset x=\"{}\" y=\"{}\" z=\"{}\" hdg=\"0\"/>", num(o[0]), num(o[1]), num(o[2]));
    let _ = writeln!(
        x,
        "    <userData code=\"hdmap:vertical_datum\" value=\"{}\"/>",
        layout.origin.vertical_datum
    );
    let _ = writeln!(x, "    <userData code=\"hdmap:epsg\" value=\"{}\"/>", layout.origin.epsg);
    x.push_str("  </header>\n");
    let contact = |e: End| if e == End::Start { "start" } else { "end" };
    for road in &roads {
        let junction = road.junction.map_or(-1, |j| (nr + 1 + j) as i64);
        let _ = writeln!(
            x,
            "  <road id=\"{}\" junction=\"{junction}\" length=\"{}\" rule=\"RHT\" name=\"\">",
            road.id,
            num(road.line.length)
        );
        x.push_str("    <link>\n");
        for (e, tag) in [(End::Start, "predecessor"), (End::End, "successor")] {
            match road.links.get(&e) {
                Some(RoadLink::Road(h, f)) => {
                    let _ = writeln!(
                        x,
                        "      <{tag} elementType=\"road\" elementId=\"{}\" contactPoint=\"{}\"/>",
                        roads[*h].id,
                        contact(*f)
                    );
                }
                Some(RoadLink::Junction(j)) => {
                    let _ =
                        writeln!(x, "      <{tag} elementType=\"junction\" elementId=\"{}\"/>", nr + 1 + j);
                }
                None => {}
            }
        }
        x.push_str("    </link>\n    <planView>\n");
        for p in &road.line.pieces {
            let _ = write!(
                x,
                "      <geometry s=\"{}\" x=\"{}\" y=\"{}\" hdg=\"{}\" length=\"{}\">",
                num(p.s),
                num(p.x),
                num(p.y),
                num(p.hdg),
                num(p.length)
            );
            match &p.shape {
                Shape::Line => {
                    summary.geometries.line += 1;
                    x.push_str("<line/>");
                }
                Shape::Arc { curvature } => {
                    summary.geometries.arc += 1;
                    let _ = write!(x, "<arc curvature=\"{}\"/>", num(*curvature));
                }
                Shape::Poly { u, v, .. } => {
                    summary.geometries.param_poly3 += 1;
                    let _ = write!(
                        x,
                        "<paramPoly3 aU=\"0\" bU=\"{}\" cU=\"{}\" dU=\"{}\" aV=\"0\" bV=\"0\" cV=\"{}\" dV=\"{}\" pRange=\"normalized\"/>",
                        num(u[1]),
                        num(u[2]),
                        num(u[3]),
                        num(v[2]),
                        num(v[3])
                    );
                }
            }
            x.push_str("</geometry>\n");
        }
        x.push_str("    </planView>\n    <elevationProfile>\n");
        for (s, c) in &road.elevation {
            let _ = writeln!(
                x,
                "      <elevation s=\"{}\" a=\"{}\" b=\"{}\" c=\"{}\" d=\"{}\"/>",
                num(*s),
                num(c[0]),
                num(c[1]),
                num(c[2]),
                num(c[3])
            );
        }
        x.push_str("    </elevationProfile>\n    <lanes>\n      <laneSection s=\"0\">\n");
        let write_lane = |x: &mut String, j: usize| {
            let rl = &road.lanes[j];
            let lane = &layout.lanes[rl.lane];
            let standard = rl.id < 0;
            let direction = match rl.with_s {
                None => " direction=\"both\"",
                Some(w) if w != standard => " direction=\"reversed\"",
                Some(_) => "",
            };
            let _ = writeln!(
                x,
                "          <lane id=\"{}\" type=\"{}\" level=\"false\"{direction}>",
                rl.id,
                lane_type(lane.kind)
            );
            if !(rl.predecessors.is_empty() && rl.successors.is_empty()) {
                x.push_str("            <link>\n");
                for p in &rl.predecessors {
                    let _ = writeln!(x, "              <predecessor id=\"{p}\"/>");
                }
                for s in &rl.successors {
                    let _ = writeln!(x, "              <successor id=\"{s}\"/>");
                }
                x.push_str("            </link>\n");
            }
            for (s, c) in &rl.widths {
                let _ = writeln!(
                    x,
                    "            <width sOffset=\"{}\" a=\"{}\" b=\"{}\" c=\"{}\" d=\"{}\"/>",
                    num(*s),
                    num(c[0]),
                    num(c[1]),
                    num(c[2]),
                    num(c[3])
                );
            }
            let outer = if j < road.r { j } else { j + 1 };
            let (bid, bdir) = road.boundaries[outer];
            let _ = writeln!(x, "            {}", road_mark(layout, bid, bdir, j < road.r));
            let _ = writeln!(x, "            <userData code=\"hdmap:lane\" value=\"{}\"/>", lane.id);
            x.push_str("          </lane>\n");
        };
        if road.r > 0 {
            x.push_str("        <left>\n");
            for j in 0..road.r {
                write_lane(&mut x, j);
            }
            x.push_str("        </left>\n");
        }
        let (cid, cdir) = road.boundaries[road.r];
        let _ = writeln!(
            x,
            "        <center>\n          <lane id=\"0\" type=\"none\" level=\"false\">\n            {}\n          </lane>\n        </center>",
            road_mark(layout, cid, cdir, false)
        );
        if road.r < road.lanes.len() {
            x.push_str("        <right>\n");
            for j in road.r..road.lanes.len() {
                write_lane(&mut x, j);
            }
            x.push_str("        </right>\n");
        }
        x.push_str("      </laneSection>\n    </lanes>\n");
        if !road.objects.is_empty() {
            x.push_str("    <objects>\n");
            for o in &road.objects {
                x.push_str(o);
            }
            x.push_str("    </objects>\n");
        }
        x.push_str("  </road>\n");
    }
    for j in 0..n_junctions {
        let _ = writeln!(x, "  <junction id=\"{}\" name=\"\" type=\"default\">", nr + 1 + j);
        let mut cid = 0;
        for ((jj, g, h, f), links) in &connections {
            if *jj != j {
                continue;
            }
            let _ = writeln!(
                x,
                "    <connection id=\"{cid}\" incomingRoad=\"{}\" connectingRoad=\"{}\" contactPoint=\"{}\">",
                roads[*g].id,
                roads[*h].id,
                contact(*f)
            );
            for (a, b) in links {
                let _ = writeln!(x, "      <laneLink from=\"{a}\" to=\"{b}\"/>");
            }
            x.push_str("    </connection>\n");
            cid += 1;
            summary.junction_connections += 1;
        }
        x.push_str("  </junction>\n");
    }
    x.push_str("</OpenDRIVE>\n");
    hdmap_io::fsutil::write_bytes_atomic(path, x.as_bytes())?;

    summary.roads = roads.len();
    summary.connecting_roads = roads.iter().filter(|r| r.junction.is_some()).count();
    summary.junctions = n_junctions;
    summary.lane_sections = roads.len();
    summary.lanes = roads.iter().map(|r| r.lanes.len()).sum();
    summary.lane_map = roads
        .iter()
        .flat_map(|r| {
            r.lanes.iter().map(|l| LaneMapping { lane: layout.lanes[l.lane].id, road: r.id, lane_id: l.id })
        })
        .collect();
    summary.lane_map.sort_by_key(|m| m.lane);
    for s in &summary.skipped {
        issues.warn(&s.element, format!("not written to OpenDRIVE: {}", s.reason));
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Largest distance from the source vertices (and segment midpoints) to the written line,
    /// by the evaluator.
    fn max_error(line: &RefLine, pts: &[[f64; 2]]) -> f64 {
        let mut worst = 0.0f64;
        for (i, q) in pts.iter().enumerate() {
            let (s, t) = line.project(*q);
            let (p, _) = line.eval(s);
            let d = (q[0] - p[0]).hypot(q[1] - p[1]);
            assert!((d - t.abs()).abs() < 1e-6 || s == 0.0 || s == line.length, "vertex {i}: {d} vs {t}");
            worst = worst.max(d);
        }
        worst
    }

    /// A curve from heading 0 at (x0, y0) with curvature `k(s)`, sampled every `step` metres
    /// (midpoint-rule integration of the heading, 1000 sub-steps per sample).
    fn curve(k: impl Fn(f64) -> f64, length: f64, step: f64) -> Vec<[f64; 2]> {
        let (mut x, mut y, mut h, mut s) = (100.0, -50.0, 0.3, 0.0);
        let mut out = vec![[x, y]];
        let n = (length / step).round() as usize;
        for _ in 0..n {
            for _ in 0..1000 {
                let ds = step / 1000.0;
                let hm = h + k(s + ds / 2.0) * ds / 2.0;
                x += hm.cos() * ds;
                y += hm.sin() * ds;
                h += k(s + ds / 2.0) * ds;
                s += ds;
            }
            out.push([x, y]);
        }
        out
    }

    #[test]
    fn straight_line_is_one_line() {
        let pts = curve(|_| 0.0, 120.0, 1.0);
        let line = RefLine::new(fit_reference(&pts, 0.04, 0.001));
        assert_eq!(line.pieces.len(), 1, "{:?}", line.pieces);
        assert!(matches!(line.pieces[0].shape, Shape::Line));
        assert!((line.length - 120.0).abs() < 1e-6, "{}", line.length);
        assert!(max_error(&line, &pts) < 1e-6);
        let (end, h) = line.eval(line.length);
        assert!((end[0] - pts[120][0]).abs() < 1e-6 && (h - 0.3).abs() < 1e-9);
    }

    #[test]
    fn arc_fit_recovers_the_radius() {
        // 90 m of a 150 m radius turning right, vertices every 1.5 m.
        let pts = curve(|_| -1.0 / 150.0, 90.0, 1.5);
        let line = RefLine::new(fit_reference(&pts, 0.04, 0.001));
        let arcs: Vec<f64> = line
            .pieces
            .iter()
            .filter_map(|p| match p.shape {
                Shape::Arc { curvature } => Some(curvature),
                _ => None,
            })
            .collect();
        assert_eq!(arcs.len(), 1, "{:?}", line.pieces);
        assert!((1.0 / arcs[0] + 150.0).abs() < 0.5, "radius {}", 1.0 / arcs[0]);
        assert!((line.length - 90.0).abs() < 0.01, "length {}", line.length);
        assert!(max_error(&line, &pts) < 0.04);
    }

    #[test]
    fn clothoid_is_fitted_within_tolerance() {
        // Curvature 0 → 1/60 over 80 m, then an arc of 40 m: no line or single arc fits it.
        let pts = curve(|s| if s < 80.0 { s / 80.0 / 60.0 } else { 1.0 / 60.0 }, 120.0, 1.0);
        for tol in [0.05, 0.01] {
            let line = RefLine::new(fit_reference(&pts, tol, 0.001));
            let err = max_error(&line, &pts);
            assert!(err < tol, "tol {tol}: error {err}");
            assert!(line.pieces.iter().any(|p| matches!(p.shape, Shape::Poly { .. })), "{:?}", line.pieces);
            // Arc length of the source (120 m) within a few mm.
            assert!((line.length - 120.0).abs() < 0.01, "length {}", line.length);
            // Midpoints between vertices too (evaluator against the true curve, denser).
            let dense = curve(|s| if s < 80.0 { s / 80.0 / 60.0 } else { 1.0 / 60.0 }, 120.0, 0.25);
            assert!(max_error(&line, &dense) < tol + 1e-3);
        }
    }

    #[test]
    fn param_poly3_evaluator_agrees_with_its_arc_length() {
        let u = [0.0, 30.0, 2.0, -1.0];
        let v = [0.0, 0.0, 6.0, -2.0];
        let table = poly_table(&u, &v);
        let piece = Piece {
            s: 0.0,
            x: 1.0,
            y: 2.0,
            hdg: 0.5,
            length: table[TABLE_N],
            shape: Shape::Poly { u, v, table },
        };
        // Summing 20 000 chords must give the same length, and eval(ds) the point at that length.
        let mut acc = 0.0;
        let mut prev = [1.0, 2.0];
        for k in 1..=20000 {
            let p = k as f64 / 20000.0;
            let g = rot([cubic(&u, p), cubic(&v, p)], 0.5);
            let q = [1.0 + g[0], 2.0 + g[1]];
            acc += (q[0] - prev[0]).hypot(q[1] - prev[1]);
            prev = q;
            if k % 5000 == 0 {
                let (e, _) = piece.eval(acc);
                assert!((e[0] - q[0]).hypot(e[1] - q[1]) < 1e-4, "p {p}: {e:?} vs {q:?}");
            }
        }
        assert!((acc - piece.length).abs() < 1e-5, "{acc} vs {}", piece.length);
    }

    #[test]
    fn piecewise_cubic_stays_within_tolerance() {
        let s: Vec<f64> = (0..200).map(|k| k as f64 * 0.5).collect();
        let v: Vec<f64> = s.iter().map(|x| 3.25 + 0.4 * (x / 15.0).sin()).collect();
        let p = fit_piecewise_cubic(&s, &v, 0.01);
        assert!(p.len() > 1, "a sine over 100 m needs several cubics");
        for (x, y) in s.iter().zip(&v) {
            assert!((poly_at(&p, *x) - y).abs() <= 0.01 + 1e-12, "at {x}");
        }
    }

    #[test]
    fn config_rejects_bad_values() {
        assert!(OpenDriveConfig::default().validate().is_ok());
        let bad = OpenDriveConfig { max_fit_error_m: 0.0, ..OpenDriveConfig::default() };
        assert!(bad.validate().is_err());
        let e: Result<OpenDriveConfig, _> = toml_like("{\"max_fit_error_m\": 0.1, \"bogus\": 1}");
        assert!(e.is_err(), "unknown keys are refused");
    }

    fn toml_like(s: &str) -> Result<OpenDriveConfig, serde_json::Error> {
        serde_json::from_str(s)
    }
}
