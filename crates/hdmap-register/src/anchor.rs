//! Layout anchoring: road-marking points from LiDAR (ground points much brighter than the
//! asphalt around them) and their association to the layout's painted lines.

use hdmap_core::RoadLayout;
use kiddo::SquaredEuclidean;
use kiddo::immutable::float::kdtree::ImmutableKdTree;

/// Settings of marking extraction and association.
#[derive(Debug, Clone, PartialEq)]
pub struct AnchorConfig {
    /// Ground cells, m.
    pub ground_cell_m: f64,
    /// Points within this height above their cell's lowest point are ground, m.
    pub ground_band_m: f64,
    /// Marking points are taken within this horizontal range of the sensor, m (paint is
    /// sampled sparsely and at grazing incidence farther out).
    pub max_range_m: f64,
    /// A ground point is paint when its intensity is this many times the median intensity of
    /// ground points at a similar range.
    pub intensity_ratio: f64,
    /// Association gate: a marking point farther than this from every painted line is not used, m.
    pub gate_m: f64,
}

impl Default for AnchorConfig {
    fn default() -> Self {
        Self { ground_cell_m: 1.0, ground_band_m: 0.15, max_range_m: 20.0, intensity_ratio: 5.5, gate_m: 0.6 }
    }
}

/// Indices of the points of a scan (LiDAR frame, deskewed) that are road paint.
pub fn marking_points(points_lidar: &[[f64; 3]], intensity: &[f32], cfg: &AnchorConfig) -> Vec<usize> {
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
            *v.select_nth_unstable_by(m, f32::total_cmp).1
        })
        .collect();
    ground
        .into_iter()
        .filter(|&i| intensity[i] as f64 >= cfg.intensity_ratio * medians[band(i).min(nb - 1)] as f64)
        .collect()
}

/// The layout's painted lines as 3D segments with a kd-tree over points every 0.5 m.
pub struct PaintIndex {
    segments: Vec<([f64; 3], [f64; 3])>,
    tree: ImmutableKdTree<f64, u32, 2, 32>,
    samples: Vec<u32>,
    shift: [f64; 2],
}

impl PaintIndex {
    /// Lane boundaries and stop lines of `layout` (absolute CRS coordinates).
    pub fn new(layout: &RoadLayout) -> Self {
        let mut lines: Vec<Vec<[f64; 3]>> = layout
            .lane_boundaries
            .iter()
            .map(|b| b.points.iter().map(|p| [p.x, p.y, p.z]).collect())
            .collect();
        lines.extend(layout.stop_lines.iter().map(|s| s.points.iter().map(|p| [p.x, p.y, p.z]).collect()));
        let mut segments = Vec::new();
        for l in &lines {
            for w in l.windows(2) {
                segments.push((w[0], w[1]));
            }
        }
        let shift = segments.first().map(|s| [s.0[0], s.0[1]]).unwrap_or([0.0; 2]);
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
        let tree = ImmutableKdTree::new_from_slice(&pts);
        Self { segments, tree, samples, shift }
    }

    /// Number of painted segments.
    pub fn len(&self) -> usize {
        self.segments.len()
    }

    /// True when the layout has no painted line.
    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    /// The nearest painted segment to a world point within `gate_m` (horizontal distance):
    /// (segment start, segment end, horizontal distance).
    pub fn nearest(&self, p: [f64; 3], gate_m: f64) -> Option<([f64; 3], [f64; 3], f64)> {
        if self.segments.is_empty() {
            return None;
        }
        let q = [p[0] - self.shift[0], p[1] - self.shift[1]];
        let near = self.tree.within_unsorted::<SquaredEuclidean>(&q, (gate_m + 0.5).powi(2));
        let mut best: Option<([f64; 3], [f64; 3], f64)> = None;
        for n in near {
            let (a, b) = self.segments[self.samples[n.item as usize] as usize];
            let d = seg_dist_2d(p, a, b);
            if d <= gate_m && best.is_none_or(|x| d < x.2) {
                best = Some((a, b, d));
            }
        }
        best
    }
}

fn seg_dist_2d(p: [f64; 3], a: [f64; 3], b: [f64; 3]) -> f64 {
    let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
    let l2 = dx * dx + dy * dy;
    let t = if l2 > 0.0 { (((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / l2).clamp(0.0, 1.0) } else { 0.0 };
    (p[0] - a[0] - t * dx).hypot(p[1] - a[1] - t * dy)
}

/// A raster of "near paint" cells (within `radius_m` of a painted line) over a box, for the
/// coarse search of the GNSS offset.
pub struct PaintMask {
    x0: f64,
    y0: f64,
    cell_m: f64,
    w: usize,
    h: usize,
    bits: Vec<bool>,
}

impl PaintMask {
    /// Rasterises the layout's lane boundaries and stop lines inside `[xmin, ymin, xmax, ymax]`.
    pub fn new(layout: &RoadLayout, bbox: [f64; 4], cell_m: f64, radius_m: f64) -> Self {
        let w = ((bbox[2] - bbox[0]) / cell_m).ceil().max(1.0) as usize;
        let h = ((bbox[3] - bbox[1]) / cell_m).ceil().max(1.0) as usize;
        let mut bits = vec![false; w * h];
        let r = (radius_m / cell_m).ceil() as i64;
        let mut lines: Vec<Vec<[f64; 2]>> =
            layout.lane_boundaries.iter().map(|b| b.points.iter().map(|p| [p.x, p.y]).collect()).collect();
        lines.extend(layout.stop_lines.iter().map(|s| s.points.iter().map(|p| [p.x, p.y]).collect()));
        for l in &lines {
            for seg in l.windows(2) {
                let (a, b) = (seg[0], seg[1]);
                let len = (b[0] - a[0]).hypot(b[1] - a[1]);
                let n = (len / (0.5 * cell_m)).ceil().max(1.0) as usize;
                for s in 0..=n {
                    let t = s as f64 / n as f64;
                    let (x, y) = (a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1]));
                    let (cx, cy) = (((x - bbox[0]) / cell_m) as i64, ((y - bbox[1]) / cell_m) as i64);
                    for dy in -r..=r {
                        for dx in -r..=r {
                            let (u, v) = (cx + dx, cy + dy);
                            if u >= 0
                                && v >= 0
                                && (u as usize) < w
                                && (v as usize) < h
                                && ((dx * dx + dy * dy) as f64) * cell_m * cell_m <= radius_m * radius_m
                            {
                                bits[v as usize * w + u as usize] = true;
                            }
                        }
                    }
                }
            }
        }
        Self { x0: bbox[0], y0: bbox[1], cell_m, w, h, bits }
    }

    /// True when `(x, y)` is near paint.
    pub fn hit(&self, x: f64, y: f64) -> bool {
        let (u, v) = ((x - self.x0) / self.cell_m, (y - self.y0) / self.cell_m);
        u >= 0.0
            && v >= 0.0
            && (u as usize) < self.w
            && (v as usize) < self.h
            && self.bits[v as usize * self.w + u as usize]
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
