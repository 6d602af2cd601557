//! Layout anchoring: road-marking points from LiDAR (ground points much brighter than the
//! asphalt around them) and their association to the layout's painted lines.

use hdmap_core::RoadLayout;
use kiddo::{ImmutableKdTree, SquaredEuclidean};
use rayon::prelude::*;

/// Settings of marking extraction and association.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnchorConfig {
    /// Ground cells, m. (Ground is also taken to lie at least 1 m below the sensor and 2.5 m
    /// away from it horizontally: a LiDAR mounted level on a vehicle roof.)
    pub ground_cell_m: f64,
    /// Points within this height above their cell's lowest point are ground, m.
    pub ground_band_m: f64,
    /// Marking points are taken within this horizontal range of the sensor, m (paint is
    /// sampled sparsely and at grazing incidence farther out).
    pub max_range_m: f64,
    /// A ground point is paint when its intensity is this many times the median intensity of
    /// ground points at a similar range.
    pub intensity_ratio: f64,
    /// Gap between the two lines of a double line, m (the layout stores one line width).
    pub double_gap_m: f64,
}

impl Default for AnchorConfig {
    fn default() -> Self {
        Self {
            ground_cell_m: 1.0,
            ground_band_m: 0.15,
            max_range_m: 20.0,
            intensity_ratio: 5.5,
            double_gap_m: 0.12,
        }
    }
}

/// Indices of the points of a scan (LiDAR frame, deskewed) that are road paint.
pub fn marking_points(points_lidar: &[[f64; 3]], intensity: &[f32], cfg: &AnchorConfig) -> Vec<usize> {
    if intensity.len() != points_lidar.len() {
        return Vec::new();
    }
    use std::collections::HashMap;
    let cell =
        |p: &[f64; 3]| ((p[0] / cfg.ground_cell_m).floor() as i64, (p[1] / cfg.ground_cell_m).floor() as i64);
    let mut lowest: HashMap<(i64, i64), f64> = HashMap::new();
    for p in points_lidar {
        let e = lowest.entry(cell(p)).or_insert(f64::INFINITY);
        *e = e.min(p[2]);
    }
    // Ground: near the lowest point of its cell, below the sensor, within range.
    let ground: Vec<usize> = (0..points_lidar.len())
        .filter(|&i| {
            let p = &points_lidar[i];
            let r = p[0].hypot(p[1]);
            r <= cfg.max_range_m && r >= 2.5 && p[2] < -1.0 && p[2] - lowest[&cell(p)] <= cfg.ground_band_m
        })
        .collect();
    // Median ground intensity per 2 m range band (intensity falls with incidence).
    let band = |i: usize| (points_lidar[i][0].hypot(points_lidar[i][1]) / 2.0) as usize;
    let nb = (cfg.max_range_m / 2.0) as usize + 1;
    let mut per: Vec<Vec<f32>> = vec![Vec::new(); nb];
    for &i in &ground {
        per[band(i).min(nb - 1)].push(intensity[i]);
    }
    let medians: Vec<f32> = per
        .iter_mut()
        .map(|v| {
            if v.len() < 20 {
                return f32::INFINITY;
            }
            let m = v.len() / 2;
            let med = *v.select_nth_unstable_by(m, f32::total_cmp).1;
            // A zero median (scans without usable intensity) would make every point paint.
            if med > 0.0 { med } else { f32::INFINITY }
        })
        .collect();
    ground
        .into_iter()
        .filter(|&i| intensity[i] as f64 >= cfg.intensity_ratio * medians[band(i).min(nb - 1)] as f64)
        .collect()
}

/// What the layout says about a marking point seen at a horizontal position.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PaintHit {
    /// On paint (inside a painted outline): only the point's height is constrained.
    Inside {
        /// Layout height at the point, m.
        z: f64,
    },
    /// Off paint by `d` metres: `q` is the nearest point of the nearest outline and `n` the
    /// unit direction from `q` to the point (the residual is `n·(p − q)`).
    Outside {
        /// Nearest outline point (absolute CRS coordinates).
        q: [f64; 2],
        /// Unit normal from `q` toward the point.
        n: [f64; 2],
        /// Distance, m.
        d: f64,
        /// Layout height at `q`, m.
        z: f64,
    },
}

/// The layout's paint as small polygons (dashes and strips cut per segment into quads, stop
/// lines, crosswalks, surface marks), indexed on a grid, plus the painted lines in 3D for
/// heights. Lane-line dashes, stop lines and crosswalk edges make the distance to paint
/// constrain a pose along the road as well as across it.
pub struct PaintModel {
    shift: [f64; 2],
    pieces: Vec<Vec<[f64; 2]>>,
    grid: std::collections::HashMap<(i64, i64), Vec<u32>>,
    segments: Vec<([f64; 3], [f64; 3])>,
    tree: Option<ImmutableKdTree<f64, 2>>,
    samples: Vec<u32>,
}

/// Grid cell of the piece index, m.
const GRID_M: f64 = 2.0;
/// Largest association gate the grid supports, m.
pub const MAX_GATE_M: f64 = 1.5;

impl PaintModel {
    /// The paint of `layout` (absolute CRS coordinates); `double_gap_m` is the gap between the
    /// two lines of a double line (the layout stores one line width).
    pub fn new(layout: &RoadLayout, double_gap_m: f64) -> Self {
        let shift = layout
            .lane_boundaries
            .iter()
            .flat_map(|b| b.points.first())
            .chain(layout.stop_lines.iter().flat_map(|s| s.points.first()))
            .map(|p| [p.x, p.y])
            .next()
            .unwrap_or([0.0; 2]);
        let mut pieces: Vec<Vec<[f64; 2]>> = Vec::new();
        for b in &layout.lane_boundaries {
            for ring in hdmap_core::boundary_paint(b, double_gap_m) {
                pieces.extend(strip_quads(&ring));
            }
        }
        for s in &layout.stop_lines {
            for w in s.points.windows(2) {
                pieces.push(rectangle([w[0].x, w[0].y], [w[1].x, w[1].y], s.width_m));
            }
        }
        for c in &layout.crosswalks {
            pieces.push(c.polygon.iter().map(|p| [p.x, p.y]).collect());
        }
        for m in &layout.surface_marks {
            pieces.push(m.polygon.iter().map(|p| [p.x, p.y]).collect());
        }
        pieces.retain(|p| p.len() >= 3);
        for p in &mut pieces {
            for v in p.iter_mut() {
                *v = [v[0] - shift[0], v[1] - shift[1]];
            }
        }
        let mut grid: std::collections::HashMap<(i64, i64), Vec<u32>> = Default::default();
        for (k, p) in pieces.iter().enumerate() {
            let lo = |i: usize| p.iter().map(|v| v[i]).fold(f64::INFINITY, f64::min) - MAX_GATE_M;
            let hi = |i: usize| p.iter().map(|v| v[i]).fold(f64::NEG_INFINITY, f64::max) + MAX_GATE_M;
            let c = |x: f64| (x / GRID_M).floor() as i64;
            for gx in c(lo(0))..=c(hi(0)) {
                for gy in c(lo(1))..=c(hi(1)) {
                    grid.entry((gx, gy)).or_default().push(k as u32);
                }
            }
        }
        // Heights: every painted line and outline as 3D segments.
        let mut lines: Vec<Vec<[f64; 3]>> = Vec::new();
        let p3 =
            |v: &[hdmap_core::nalgebra::Point3<f64>]| v.iter().map(|p| [p.x, p.y, p.z]).collect::<Vec<_>>();
        lines.extend(layout.lane_boundaries.iter().map(|b| p3(&b.points)));
        lines.extend(layout.stop_lines.iter().map(|s| p3(&s.points)));
        for ring in layout
            .crosswalks
            .iter()
            .map(|c| &c.polygon)
            .chain(layout.surface_marks.iter().map(|m| &m.polygon))
        {
            let mut r = p3(ring);
            if let Some(f) = r.first().copied() {
                r.push(f);
            }
            lines.push(r);
        }
        let mut segments = Vec::new();
        for l in &lines {
            for w in l.windows(2) {
                segments.push((w[0], w[1]));
            }
        }
        let mut pts = Vec::new();
        let mut samples = Vec::new();
        for (k, (a, b)) in segments.iter().enumerate() {
            let len = (b[0] - a[0]).hypot(b[1] - a[1]);
            let n = (len / 0.5).ceil().max(1.0) as usize;
            for s in 0..=n {
                let t = s as f64 / n as f64;
                pts.push([a[0] + t * (b[0] - a[0]) - shift[0], a[1] + t * (b[1] - a[1]) - shift[1]]);
                samples.push(k as u32);
            }
        }
        // No tree without paint (queries then find nothing).
        let tree = ImmutableKdTree::new_from_slice(&pts).ok();
        Self { shift, pieces, grid, segments, tree, samples }
    }

    /// Number of paint pieces.
    pub fn len(&self) -> usize {
        self.pieces.len()
    }

    /// True when the layout has no paint.
    pub fn is_empty(&self) -> bool {
        self.pieces.is_empty()
    }

    /// Layout height at a horizontal position: the height of the nearest painted line or
    /// outline within 4 m, interpolated along its segment.
    pub fn height(&self, p: [f64; 2]) -> Option<f64> {
        let q = [p[0] - self.shift[0], p[1] - self.shift[1]];
        let tree = self.tree.as_ref()?;
        let near = tree.query(&q).within::<SquaredEuclidean<f64>>(4.5f64.powi(2)).unsorted().execute();
        let mut best: Option<(f64, f64)> = None;
        for n in near {
            let (a, b) = self.segments[self.samples[n.item as usize] as usize];
            let (_, d, t) = foot(p, [a[0], a[1]], [b[0], b[1]]);
            if d <= 4.0 && best.is_none_or(|x| d < x.0) {
                best = Some((d, a[2] + t * (b[2] - a[2])));
            }
        }
        best.map(|b| b.1)
    }

    /// Where a marking point at horizontal position `p` (absolute) stands against the paint:
    /// inside an outline, or off it by at most `gate_m` (≤ [`MAX_GATE_M`]); `None` when farther
    /// from every outline or without a layout height.
    pub fn query(&self, p: [f64; 2], gate_m: f64) -> Option<PaintHit> {
        let q = [p[0] - self.shift[0], p[1] - self.shift[1]];
        let cell = ((q[0] / GRID_M).floor() as i64, (q[1] / GRID_M).floor() as i64);
        let cands = self.grid.get(&cell)?;
        let mut best: Option<([f64; 2], f64)> = None;
        for &k in cands {
            let poly = &self.pieces[k as usize];
            if point_in_polygon(q, poly) {
                return Some(PaintHit::Inside { z: self.height(p)? });
            }
            for i in 0..poly.len() {
                let (a, b) = (poly[i], poly[(i + 1) % poly.len()]);
                let (f, d, _) = foot(q, a, b);
                if best.is_none_or(|x| d < x.1) {
                    best = Some((f, d));
                }
            }
        }
        let (f, d) = best?;
        if d > gate_m.min(MAX_GATE_M) {
            return None;
        }
        if d <= 0.0 {
            // On an outline: on paint.
            return Some(PaintHit::Inside { z: self.height(p)? });
        }
        let abs = [f[0] + self.shift[0], f[1] + self.shift[1]];
        let n = [(p[0] - abs[0]) / d, (p[1] - abs[1]) / d];
        Some(PaintHit::Outside { q: abs, n, d, z: self.height(abs)? })
    }
}

/// The quads of a strip ring (one side, then the other reversed: see
/// [`hdmap_core::boundary_paint`]), one per segment of the centre line.
fn strip_quads(ring: &[[f64; 2]]) -> Vec<Vec<[f64; 2]>> {
    let n = ring.len() / 2;
    if !ring.len().is_multiple_of(2) || n < 2 {
        return vec![ring.to_vec()];
    }
    (0..n - 1).map(|i| vec![ring[i], ring[i + 1], ring[2 * n - 2 - i], ring[2 * n - 1 - i]]).collect()
}

/// A rectangle of `width` centred on segment `a`–`b`.
fn rectangle(a: [f64; 2], b: [f64; 2], width: f64) -> Vec<[f64; 2]> {
    let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
    let l = dx.hypot(dy).max(1e-12);
    let (nx, ny) = (-dy / l * width / 2.0, dx / l * width / 2.0);
    vec![[a[0] + nx, a[1] + ny], [b[0] + nx, b[1] + ny], [b[0] - nx, b[1] - ny], [a[0] - nx, a[1] - ny]]
}

/// Crossing-number test.
fn point_in_polygon(p: [f64; 2], poly: &[[f64; 2]]) -> bool {
    let mut inside = false;
    let n = poly.len();
    for i in 0..n {
        let (a, b) = (poly[i], poly[(i + 1) % n]);
        if (a[1] > p[1]) != (b[1] > p[1]) {
            let x = a[0] + (p[1] - a[1]) / (b[1] - a[1]) * (b[0] - a[0]);
            if p[0] < x {
                inside = !inside;
            }
        }
    }
    inside
}

/// Nearest point of segment `a`–`b` to `p`, the distance, and where it lies along the segment
/// (0 at `a`, 1 at `b`).
fn foot(p: [f64; 2], a: [f64; 2], b: [f64; 2]) -> ([f64; 2], f64, f64) {
    let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
    let l2 = dx * dx + dy * dy;
    let t = if l2 > 0.0 { (((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / l2).clamp(0.0, 1.0) } else { 0.0 };
    let f = [a[0] + t * dx, a[1] + t * dy];
    (f, (p[0] - f[0]).hypot(p[1] - f[1]), t)
}

/// A sparse raster of "on or near paint" cells, for the coarse search of the GNSS offset: only
/// tiles that hold paint are stored, so memory follows the painted area, not the drive's extent.
pub struct PaintMask {
    shift: [f64; 2],
    cell_m: f64,
    tiles: std::collections::HashMap<(i64, i64), Vec<bool>>,
}

/// Cells per tile side.
const TILE: i64 = 128;

impl PaintMask {
    /// Rasterises `model`'s paint outlines, dilated by `radius_m`, at `cell_m`.
    pub fn new(model: &PaintModel, cell_m: f64, radius_m: f64) -> Self {
        let cells: Vec<(i64, i64)> = model
            .pieces
            .par_iter()
            .flat_map_iter(|poly| {
                let lo = [0, 1].map(|a| poly.iter().map(|v| v[a]).fold(f64::INFINITY, f64::min) - radius_m);
                let hi =
                    [0, 1].map(|a| poly.iter().map(|v| v[a]).fold(f64::NEG_INFINITY, f64::max) + radius_m);
                let (x0, x1) = ((lo[0] / cell_m).floor() as i64, (hi[0] / cell_m).ceil() as i64);
                let (y0, y1) = ((lo[1] / cell_m).floor() as i64, (hi[1] / cell_m).ceil() as i64);
                let mut out = Vec::new();
                for iy in y0..=y1 {
                    for ix in x0..=x1 {
                        let c = [(ix as f64 + 0.5) * cell_m, (iy as f64 + 0.5) * cell_m];
                        let near = point_in_polygon(c, poly)
                            || (0..poly.len())
                                .any(|k| foot(c, poly[k], poly[(k + 1) % poly.len()]).1 <= radius_m);
                        if near {
                            out.push((ix, iy));
                        }
                    }
                }
                out.into_iter()
            })
            .collect();
        let mut tiles: std::collections::HashMap<(i64, i64), Vec<bool>> = Default::default();
        for (ix, iy) in cells {
            let t = tiles
                .entry((ix.div_euclid(TILE), iy.div_euclid(TILE)))
                .or_insert_with(|| vec![false; (TILE * TILE) as usize]);
            t[(iy.rem_euclid(TILE) * TILE + ix.rem_euclid(TILE)) as usize] = true;
        }
        Self { shift: model.shift, cell_m, tiles }
    }

    /// True when `(x, y)` (absolute) is on or near paint.
    pub fn hit(&self, x: f64, y: f64) -> bool {
        let ix = ((x - self.shift[0]) / self.cell_m).floor() as i64;
        let iy = ((y - self.shift[1]) / self.cell_m).floor() as i64;
        self.tiles
            .get(&(ix.div_euclid(TILE), iy.div_euclid(TILE)))
            .is_some_and(|t| t[(iy.rem_euclid(TILE) * TILE + ix.rem_euclid(TILE)) as usize])
    }
    /// The horizontal offset within ±`search_m` (step `step_m`) that puts most `points` on
    /// paint; among offsets within 5 % of the best count, the smallest. `None` without hits.
    pub fn best_offset(&self, points: &[[f64; 2]], search_m: f64, step_m: f64) -> Option<([f64; 2], usize)> {
        let n = (search_m / step_m).round() as i64;
        let mut scored = Vec::new();
        for iy in -n..=n {
            for ix in -n..=n {
                let (dx, dy) = (ix as f64 * step_m, iy as f64 * step_m);
                let c = points.iter().filter(|p| self.hit(p[0] + dx, p[1] + dy)).count();
                scored.push(([dx, dy], c));
            }
        }
        let best = scored.iter().map(|s| s.1).max()?;
        if best == 0 {
            return None;
        }
        scored
            .into_iter()
            .filter(|s| s.1 as f64 >= 0.95 * best as f64)
            .min_by(|a, b| a.0[0].hypot(a.0[1]).total_cmp(&b.0[0].hypot(b.0[1])))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdmap_core::nalgebra::Point3;
    use hdmap_core::{
        Crosswalk, DashPattern, ElementId, GeoOrigin, LaneBoundary, LineType, MarkingColor, StopLine,
    };
    use rand::{Rng, SeedableRng};

    /// A small layout far from the CRS origin: a dashed and a solid line on a bend, a stop line
    /// and a crosswalk.
    fn layout() -> RoadLayout {
        let origin = GeoOrigin::new(5186, [200_000.0, 550_000.0, 0.0], hdmap_core::VerticalDatum::Kngeoid18)
            .expect("origin");
        let mut l = RoadLayout::new(origin);
        let arc = |off: f64| -> Vec<Point3<f64>> {
            (0..=40)
                .map(|i| {
                    let a = i as f64 * 0.01;
                    Point3::new(
                        200_000.0 + (30.0 + off) * a.sin(),
                        550_000.0 + (30.0 + off) * (1.0 - a.cos()),
                        30.0,
                    )
                })
                .collect()
        };
        for (id, off, t, dash) in [
            (1, 0.0, LineType::Dashed, Some(DashPattern { paint_m: 3.0, gap_m: 5.0, phase_m: 1.0 })),
            (2, 3.25, LineType::Solid, None),
        ] {
            l.lane_boundaries.push(LaneBoundary {
                id: ElementId(id),
                line_type: t,
                color: MarkingColor::White,
                width_m: 0.15,
                dash,
                points: arc(off),
            });
        }
        l.stop_lines.push(StopLine {
            id: ElementId(3),
            width_m: 0.45,
            points: vec![Point3::new(200_002.0, 549_990.0, 30.0), Point3::new(200_002.0, 549_996.0, 30.0)],
        });
        l.crosswalks.push(Crosswalk {
            id: ElementId(4),
            polygon: vec![
                Point3::new(200_004.0, 549_985.0, 30.0),
                Point3::new(200_008.0, 549_985.0, 30.0),
                Point3::new(200_008.0, 549_998.0, 30.0),
                Point3::new(200_004.0, 549_998.0, 30.0),
            ],
            stripe_m: 0.45,
            gap_m: 0.45,
        });
        l
    }

    #[test]
    fn sparse_mask_agrees_with_the_outlines() {
        let model = PaintModel::new(&layout(), 0.12);
        let (cell, radius) = (0.05, 0.05);
        let mask = PaintMask::new(&model, cell, radius);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let (mut on, mut checked) = (0, 0);
        for _ in 0..40_000 {
            // Cell centres (the raster's sampling points) over the layout's extent.
            let ix = rng.random_range(-200i64..800);
            let iy = rng.random_range(-400i64..500);
            let c = [(ix as f64 + 0.5) * cell, (iy as f64 + 0.5) * cell];
            let truth = model.pieces.iter().any(|p| {
                point_in_polygon(c, p)
                    || (0..p.len()).any(|k| foot(c, p[k], p[(k + 1) % p.len()]).1 <= radius)
            });
            let hit = mask.hit(c[0] + model.shift[0], c[1] + model.shift[1]);
            assert_eq!(hit, truth, "cell ({ix}, {iy})");
            on += usize::from(truth);
            checked += 1;
        }
        assert!(on > 100 && on < checked / 2, "{on} of {checked} on paint");
    }

    #[test]
    fn points_on_paint_are_inside_and_points_beside_it_are_pulled_toward_it() {
        let model = PaintModel::new(&layout(), 0.12);
        // The middle of the crosswalk: on paint, at the layout's height.
        match model.query([200_006.0, 549_991.0], 0.5) {
            Some(PaintHit::Inside { z }) => assert!((z - 30.0).abs() < 1e-9),
            other => panic!("{other:?}"),
        }
        // 0.3 m beside the stop line (centre x = 200 002, half width 0.225): off by 0.075 m,
        // pulled back along −x.
        match model.query([200_002.3, 549_993.0], 0.5) {
            Some(PaintHit::Outside { d, n, .. }) => {
                assert!((d - 0.075).abs() < 1e-6, "{d}");
                assert!((n[0] - 1.0).abs() < 1e-6 && n[1].abs() < 1e-6, "{n:?}");
            }
            other => panic!("{other:?}"),
        }
        // Beyond the gate: nothing.
        assert!(model.query([200_003.0, 549_993.0], 0.5).is_none());
    }
}
