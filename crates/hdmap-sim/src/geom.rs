//! 2D geometry: sampled reference lines with (s, t) road coordinates, polygons, Béziers.

use crate::config::Segment;

/// A 2D point / vector.
pub type P2 = [f64; 2];

/// `a + k·b`.
pub fn add(a: P2, b: P2, k: f64) -> P2 {
    [a[0] + k * b[0], a[1] + k * b[1]]
}

/// `a − b`.
pub fn sub(a: P2, b: P2) -> P2 {
    [a[0] - b[0], a[1] - b[1]]
}

/// Dot product.
pub fn dot(a: P2, b: P2) -> f64 {
    a[0] * b[0] + a[1] * b[1]
}

/// Euclidean norm.
pub fn norm(a: P2) -> f64 {
    a[0].hypot(a[1])
}

/// Unit vector of a heading.
pub fn dir(heading: f64) -> P2 {
    [heading.cos(), heading.sin()]
}

/// Left normal of a heading.
pub fn left(heading: f64) -> P2 {
    [-heading.sin(), heading.cos()]
}

/// A reference line sampled every `STEP` metres: positions, arc length and heading.
#[derive(Debug, Clone)]
pub struct RefLine {
    pts: Vec<P2>,
    headings: Vec<f64>,
    step: f64,
}

/// Sampling step of reference lines, m.
pub const STEP: f64 = 0.25;

impl RefLine {
    /// Integrates segments from `start` with initial `heading` (substeps of 2.5 cm).
    pub fn from_segments(start: P2, heading: f64, segments: &[Segment]) -> Self {
        let sub = 0.025;
        let per = (STEP / sub).round() as usize;
        let mut pts = vec![start];
        let mut headings = vec![heading];
        let (mut p, mut h) = (start, heading);
        let mut k = 0usize;
        for seg in segments {
            let (len, k0, k1) = match *seg {
                Segment::Line { length_m } => (length_m, 0.0, 0.0),
                Segment::Arc { length_m, radius_m } => (length_m, 1.0 / radius_m, 1.0 / radius_m),
                Segment::Clothoid { length_m, curvature_start, curvature_end } => {
                    (length_m, curvature_start, curvature_end)
                }
            };
            let n = (len / sub).round().max(1.0) as usize;
            let ds = len / n as f64;
            for i in 0..n {
                // Midpoint rule on heading: exact for lines and arcs, 2nd order for spirals.
                let u = (i as f64 + 0.5) / n as f64;
                let kappa = k0 + (k1 - k0) * u;
                let hm = h + 0.5 * kappa * ds;
                p = add(p, dir(hm), ds);
                h += kappa * ds;
                k += 1;
                if k.is_multiple_of(per) {
                    pts.push(p);
                    headings.push(h);
                }
            }
        }
        if !k.is_multiple_of(per) {
            pts.push(p);
            headings.push(h);
        }
        Self { pts, headings, step: STEP }
    }

    /// A straight line from `a` to `b`.
    pub fn straight(a: P2, b: P2) -> Self {
        let d = sub(b, a);
        let len = norm(d);
        Self::from_segments(a, d[1].atan2(d[0]), &[Segment::Line { length_m: len }])
    }

    /// Length, m (the last sample may be closer than `STEP`).
    pub fn length(&self) -> f64 {
        let n = self.pts.len();
        if n < 2 {
            return 0.0;
        }
        (n - 2) as f64 * self.step + norm(sub(self.pts[n - 1], self.pts[n - 2]))
    }

    /// Position and heading at arc length `s` (clamped to the line).
    pub fn pose(&self, s: f64) -> (P2, f64) {
        let n = self.pts.len();
        let s = s.clamp(0.0, self.length());
        let i = ((s / self.step).floor() as usize).min(n - 2);
        let seg = norm(sub(self.pts[i + 1], self.pts[i])).max(1e-12);
        let u = ((s - i as f64 * self.step) / seg).clamp(0.0, 1.0);
        let p = add(self.pts[i], sub(self.pts[i + 1], self.pts[i]), u);
        let dh = (self.headings[i + 1] - self.headings[i] + std::f64::consts::PI)
            .rem_euclid(std::f64::consts::TAU)
            - std::f64::consts::PI;
        (p, self.headings[i] + u * dh)
    }

    /// The point at road coordinates (s, t): `t` to the left of the line.
    pub fn at(&self, s: f64, t: f64) -> P2 {
        let (p, h) = self.pose(s);
        add(p, left(h), t)
    }

    /// Points at offset `t` from `s0` to `s1` (either order), at most `step` apart, both ends
    /// included.
    pub fn offset(&self, s0: f64, s1: f64, t: f64, step: f64) -> Vec<P2> {
        let n = ((s1 - s0).abs() / step).ceil().max(1.0) as usize;
        (0..=n).map(|i| self.at(s0 + (s1 - s0) * i as f64 / n as f64, t)).collect()
    }

    /// Road coordinates (s, t) of the nearest point of the line, by local search from a coarse
    /// scan. `None` when the projection falls beyond either end.
    pub fn project(&self, p: P2) -> Option<(f64, f64)> {
        let n = self.pts.len();
        let mut best = (f64::INFINITY, 0usize);
        let stride = 8;
        let mut i = 0;
        while i < n {
            let d = norm(sub(p, self.pts[i]));
            if d < best.0 {
                best = (d, i);
            }
            i += stride;
        }
        let lo = best.1.saturating_sub(stride);
        let hi = (best.1 + stride).min(n - 1);
        let mut best = (f64::INFINITY, 0.0, 0.0);
        for j in lo..hi.max(lo + 1).min(n - 1) {
            let a = self.pts[j];
            let d = sub(self.pts[j + 1], a);
            let len2 = dot(d, d).max(1e-18);
            let u = (dot(sub(p, a), d) / len2).clamp(0.0, 1.0);
            let q = add(a, d, u);
            let dist = norm(sub(p, q));
            if dist < best.0 {
                let s = j as f64 * self.step + u * len2.sqrt();
                let t = dot(sub(p, q), left(self.headings[j]));
                best = (dist, s, t);
            }
        }
        let (_, mut s, mut t) = best;
        // Refine against the interpolated pose so that `project` inverts `at` exactly.
        for _ in 0..3 {
            let (q, h) = self.pose(s);
            let d = sub(p, q);
            s = (s + dot(d, dir(h))).clamp(0.0, self.length());
            let (q, h) = self.pose(s);
            t = dot(sub(p, q), left(h));
        }
        if s <= 1e-9 && dot(sub(p, self.pts[0]), dir(self.headings[0])) < 0.0 {
            return None;
        }
        if s >= self.length() - 1e-9 && dot(sub(p, self.pts[n - 1]), dir(self.headings[n - 1])) > 0.0 {
            return None;
        }
        Some((s, t))
    }
}

/// Cubic Bézier from `a` (direction `da`) to `b` (arriving with direction `db`), sampled at
/// about `step` metres.
pub fn bezier(a: P2, da: P2, b: P2, db: P2, step: f64) -> Vec<P2> {
    let l = norm(sub(b, a)) / 3.0;
    let (c1, c2) = (add(a, da, l), add(b, db, -l));
    let n = ((3.0 * l) / step).ceil().max(2.0) as usize;
    (0..=n)
        .map(|i| {
            let u = i as f64 / n as f64;
            let v = 1.0 - u;
            let w = [v * v * v, 3.0 * v * v * u, 3.0 * v * u * u, u * u * u];
            [
                w[0] * a[0] + w[1] * c1[0] + w[2] * c2[0] + w[3] * b[0],
                w[0] * a[1] + w[1] * c1[1] + w[2] * c2[1] + w[3] * b[1],
            ]
        })
        .collect()
}

/// Quadratic Bézier from `a` to `b` with control `c`.
pub fn quad_bezier(a: P2, c: P2, b: P2, n: usize) -> Vec<P2> {
    (0..=n)
        .map(|i| {
            let u = i as f64 / n as f64;
            let v = 1.0 - u;
            [
                v * v * a[0] + 2.0 * v * u * c[0] + u * u * b[0],
                v * v * a[1] + 2.0 * v * u * c[1] + u * u * b[1],
            ]
        })
        .collect()
}

/// Polyline offset by `d` to its left (normals from neighbouring points).
pub fn offset_polyline(pts: &[P2], d: f64) -> Vec<P2> {
    let n = pts.len();
    (0..n)
        .map(|i| {
            let a = pts[i.saturating_sub(1)];
            let b = pts[(i + 1).min(n - 1)];
            let t = sub(b, a);
            let l = norm(t).max(1e-12);
            add(pts[i], [-t[1] / l, t[0] / l], d)
        })
        .collect()
}

/// Even-odd point-in-polygon (ring not closed).
pub fn in_polygon(p: P2, ring: &[P2]) -> bool {
    let mut inside = false;
    let n = ring.len();
    let mut j = n - 1;
    for i in 0..n {
        let (a, b) = (ring[i], ring[j]);
        if (a[1] > p[1]) != (b[1] > p[1]) && p[0] < (b[0] - a[0]) * (p[1] - a[1]) / (b[1] - a[1]) + a[0] {
            inside = !inside;
        }
        j = i;
    }
    inside
}

/// Axis-aligned bounds `[min_x, min_y, max_x, max_y]` of points.
pub fn bounds(pts: &[P2]) -> [f64; 4] {
    pts.iter().fold([f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY], |b, p| {
        [b[0].min(p[0]), b[1].min(p[1]), b[2].max(p[0]), b[3].max(p[1])]
    })
}

/// Distance from `p` to segment `ab`.
pub fn dist_to_segment(p: P2, a: P2, b: P2) -> f64 {
    let d = sub(b, a);
    let u = (dot(sub(p, a), d) / dot(d, d).max(1e-18)).clamp(0.0, 1.0);
    norm(sub(p, add(a, d, u)))
}

/// Distance from `p` to a closed polygon's boundary.
pub fn dist_to_ring(p: P2, ring: &[P2]) -> f64 {
    let n = ring.len();
    (0..n).map(|i| dist_to_segment(p, ring[i], ring[(i + 1) % n])).fold(f64::INFINITY, f64::min)
}

/// Signed area (positive when counter-clockwise).
pub fn signed_area(ring: &[P2]) -> f64 {
    let n = ring.len();
    (0..n).map(|i| ring[i][0] * ring[(i + 1) % n][1] - ring[(i + 1) % n][0] * ring[i][1]).sum::<f64>() / 2.0
}

/// A uniform grid over a bounding box mapping cells to item indices.
#[derive(Debug, Clone)]
pub struct Grid {
    origin: P2,
    cell: f64,
    nx: usize,
    ny: usize,
    cells: Vec<Vec<u32>>,
}

impl Grid {
    /// An empty grid covering `b` with square cells.
    pub fn new(b: [f64; 4], cell: f64) -> Self {
        let nx = (((b[2] - b[0]) / cell).ceil() as usize).max(1);
        let ny = (((b[3] - b[1]) / cell).ceil() as usize).max(1);
        Self { origin: [b[0], b[1]], cell, nx, ny, cells: vec![Vec::new(); nx * ny] }
    }

    /// Cell size, m.
    pub fn cell(&self) -> f64 {
        self.cell
    }

    /// Cell counts (x, y).
    pub fn dims(&self) -> (usize, usize) {
        (self.nx, self.ny)
    }

    /// Grid origin (min corner).
    pub fn origin(&self) -> P2 {
        self.origin
    }

    /// Cell index of a point, `None` outside.
    pub fn cell_of(&self, p: P2) -> Option<(usize, usize)> {
        let i = ((p[0] - self.origin[0]) / self.cell).floor();
        let j = ((p[1] - self.origin[1]) / self.cell).floor();
        (i >= 0.0 && j >= 0.0 && (i as usize) < self.nx && (j as usize) < self.ny)
            .then_some((i as usize, j as usize))
    }

    /// Registers item `id` in every cell its bounds touch.
    pub fn insert(&mut self, id: u32, b: [f64; 4]) {
        let c = |v: f64, o: f64, n: usize| (((v - o) / self.cell).floor().max(0.0) as usize).min(n - 1);
        for j in c(b[1], self.origin[1], self.ny)..=c(b[3], self.origin[1], self.ny) {
            for i in c(b[0], self.origin[0], self.nx)..=c(b[2], self.origin[0], self.nx) {
                self.cells[j * self.nx + i].push(id);
            }
        }
    }

    /// Items registered in the cell containing `p`.
    pub fn at(&self, p: P2) -> &[u32] {
        match self.cell_of(p) {
            Some((i, j)) => &self.cells[j * self.nx + i],
            None => &[],
        }
    }

    /// Items of cell (i, j).
    pub fn cell_items(&self, i: usize, j: usize) -> &[u32] {
        &self.cells[j * self.nx + i]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arcs_and_clothoids_integrate_exactly_enough() {
        // A quarter circle of radius 100 m ends 100 m east and 100 m north of its start.
        let r = RefLine::from_segments(
            [0.0, 0.0],
            0.0,
            &[Segment::Arc { length_m: 50.0 * std::f64::consts::PI, radius_m: 100.0 }],
        );
        let (p, h) = r.pose(r.length());
        assert!((p[0] - 100.0).abs() < 1e-6 && (p[1] - 100.0).abs() < 1e-6, "{p:?}");
        assert!((h - std::f64::consts::FRAC_PI_2).abs() < 1e-9);
        // A clothoid from 0 to k over L turns by k·L/2.
        let c = RefLine::from_segments(
            [0.0, 0.0],
            0.0,
            &[Segment::Clothoid { length_m: 60.0, curvature_start: 0.0, curvature_end: 0.01 }],
        );
        assert!((c.pose(c.length()).1 - 0.3).abs() < 1e-9);
        assert!((c.length() - 60.0).abs() < 1e-6);
        // Projection inverts `at`.
        for &(s, t) in &[(10.0, 2.0), (77.7, -5.5), (120.0, 0.3)] {
            let (s2, t2) = r.project(r.at(s, t)).expect("on the line");
            assert!((s - s2).abs() < 1e-6 && (t - t2).abs() < 1e-6, "({s},{t}) -> ({s2},{t2})");
        }
        assert!(r.project([-5.0, 0.0]).is_none());
    }

    #[test]
    fn polygon_tests() {
        let sq = [[0.0, 0.0], [2.0, 0.0], [2.0, 2.0], [0.0, 2.0]];
        assert!(in_polygon([1.0, 1.0], &sq) && !in_polygon([3.0, 1.0], &sq));
        assert!((signed_area(&sq) - 4.0).abs() < 1e-12);
        assert!((dist_to_ring([1.0, 1.5], &sq) - 0.5).abs() < 1e-12);
    }
}
