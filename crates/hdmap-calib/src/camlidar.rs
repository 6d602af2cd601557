//! Camera–LiDAR extrinsics without a target: refinement on ordinary street scenes.
//!
//! LiDAR edges — foreground points at depth discontinuities and bright points at intensity
//! steps (paint on asphalt) along each beam — should land on image edges. The image's edge
//! strength is spread by an inverse distance transform (each pixel keeps the strongest edge
//! around it, decayed by `gamma` per pixel) so that the score has a basin wide enough to pull a
//! guess that is degrees off, and the `camera_from_lidar` maximising the weighted sum of edge
//! strength under the projected LiDAR edges is found by a neighbourhood search with shrinking
//! steps — 3³ over rotation (the default: the lever arm is kept, single frames fix it poorly),
//! or 3⁶ over rotation and translation — coarse-to-fine over `gamma`
//! (Levinson & Thrun, "Automatic online calibration of cameras and lasers", RSS 2013).
//! Several image/scan pairs of one rig are scored together.
//!
//! On real frames the objective has false maxima a search from the guess can fall into (on the
//! PJLab `auto_2` pair, three of five guesses up to 2.5° off ended 2.7–3.8° off). So the rotation
//! is also searched from seeded restarts around the guess, and the result that lines up the
//! most road paint ([`crate::paint_check`], a measure the objective does not use) is taken
//! among those scoring no worse than the guess. The lever arm, when searched, is refined
//! afterwards from that rotation.

use hdmap_core::camera::CameraIntrinsics;
use hdmap_core::nalgebra::{Isometry3, Vector3, Vector6};
use image::GrayImage;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::CalibError;

/// Settings of the targetless refinement.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TargetlessConfig {
    /// Decay of the edge transform per pixel, one search stage per value (wide basin first).
    pub gammas: Vec<f32>,
    /// Weight of the raw edge against its spread copy in the score image (Levinson's α).
    pub alpha: f32,
    /// Gaussian blur of the image before the gradient, px.
    pub blur_sigma_px: f32,
    /// First rotation step of the search, degrees (halved until `min_step_deg`).
    pub step_deg: f64,
    /// First translation step, metres (halved with the rotation step).
    pub step_m: f64,
    /// The search stops when the rotation step is below this, degrees.
    pub min_step_deg: f64,
    /// LiDAR points used: range band, metres.
    pub min_range_m: f64,
    /// Far limit of the range band, metres.
    pub max_range_m: f64,
    /// Points of one beam are neighbours when their elevations differ by less than this, degrees.
    pub beam_tolerance_deg: f64,
    /// ... and their azimuths by less than this, degrees.
    pub max_azimuth_gap_deg: f64,
    /// A depth edge needs the neighbour this much farther, metres, or `depth_jump_ratio` of the range.
    pub depth_jump_m: f64,
    /// Relative part of the depth-edge threshold.
    pub depth_jump_ratio: f64,
    /// An intensity edge needs this step, as a fraction of the scan's 99th-percentile intensity.
    pub intensity_step: f64,
    /// ... and the bright point this many times its darker neighbour.
    pub intensity_ratio: f64,
    /// Neighbours along a beam lie on one surface when their ranges differ by less than this
    /// (plus 2 % of the range), metres.
    pub continuity_m: f64,
    /// A surface rim with no return beyond it (sky) counts as a depth edge up to this range, m.
    pub silhouette_range_m: f64,
    /// Search translation too; `false` keeps the guess's lever arm and refines rotation only.
    pub translation: bool,
    /// Weight of the edge score.
    pub edge_weight: f64,
    /// Weight of the mutual information (nats) between LiDAR intensity and image grey values
    /// against the edge score; 0 turns it off.
    pub mi_weight: f64,
    /// Blur of the grey image for the mutual information, px, per stage (0: sharp).
    pub mi_blur_px: Vec<f32>,
    /// Pixels of margin around the image inside which LiDAR edges are kept at the start.
    pub margin_px: f64,
    /// Searches started besides the one from the guess: from the guess turned by a seeded
    /// draw of up to ±`restart_deg` about each axis. The result is the one that lines up the
    /// most road paint ([`crate::paint_check`]), among those scoring no worse than the guess.
    pub restarts: usize,
    /// Spread of the restarts, degrees per axis.
    pub restart_deg: f64,
    /// A paint crossing agrees when its offset is within this angle (fx · angle px), degrees.
    pub paint_tolerance_deg: f64,
    /// Fewest agreeing paint crossings (all pairs) for paint to choose among the searches;
    /// below it, the highest objective chooses.
    pub min_paint_crossings: usize,
}

impl Default for TargetlessConfig {
    fn default() -> Self {
        Self {
            gammas: vec![0.98, 0.95, 0.9],
            alpha: 1.0 / 3.0,
            blur_sigma_px: 1.0,
            step_deg: 1.0,
            step_m: 0.05,
            min_step_deg: 0.005,
            min_range_m: 1.5,
            max_range_m: 60.0,
            beam_tolerance_deg: 0.08,
            max_azimuth_gap_deg: 0.6,
            depth_jump_m: 0.5,
            depth_jump_ratio: 0.05,
            intensity_step: 0.15,
            intensity_ratio: 1.5,
            continuity_m: 0.1,
            silhouette_range_m: 40.0,
            margin_px: 150.0,
            translation: false,
            edge_weight: 1.0,
            mi_weight: 1.0,
            mi_blur_px: vec![8.0, 4.0, 1.0],
            restarts: 8,
            restart_deg: 2.0,
            paint_tolerance_deg: 0.15,
            min_paint_crossings: 10,
        }
    }
}

impl TargetlessConfig {
    /// Checks every setting; the message names the key.
    pub fn validate(&self) -> Result<(), CalibError> {
        let bad = |k: &str, why: &str| Err(CalibError::Degenerate(format!("targetless setting {k}: {why}")));
        if self.gammas.is_empty() || self.gammas.iter().any(|g| !(*g > 0.0 && *g < 1.0)) {
            return bad("gammas", "need at least one value, each in (0, 1)");
        }
        if !(0.0..=1.0).contains(&self.alpha) {
            return bad("alpha", "must be in [0, 1]");
        }
        for (k, v) in [
            ("step_deg", self.step_deg),
            ("step_m", self.step_m),
            ("min_step_deg", self.min_step_deg),
            ("min_range_m", self.min_range_m),
            ("beam_tolerance_deg", self.beam_tolerance_deg),
            ("max_azimuth_gap_deg", self.max_azimuth_gap_deg),
            ("depth_jump_m", self.depth_jump_m),
            ("intensity_step", self.intensity_step),
            ("intensity_ratio", self.intensity_ratio),
            ("continuity_m", self.continuity_m),
            ("silhouette_range_m", self.silhouette_range_m),
            ("restart_deg", self.restart_deg),
            ("paint_tolerance_deg", self.paint_tolerance_deg),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return bad(k, "must be a positive number");
            }
        }
        if self.max_range_m.partial_cmp(&self.min_range_m) != Some(std::cmp::Ordering::Greater) {
            return bad("max_range_m", "must exceed min_range_m");
        }
        // Gaussian blurs need a normal, positive sigma (0 in `mi_blur_px` means none).
        if !(self.blur_sigma_px.is_normal() && self.blur_sigma_px > 0.0 && self.blur_sigma_px < 50.0) {
            return bad("blur_sigma_px", "must be in (0, 50) px");
        }
        if self.mi_blur_px.iter().any(|s| !(*s == 0.0 || (s.is_normal() && *s > 0.0 && *s < 50.0))) {
            return bad("mi_blur_px", "each must be 0 (no blur) or in (0, 50) px");
        }
        for (k, v) in [
            ("depth_jump_ratio", self.depth_jump_ratio),
            ("edge_weight", self.edge_weight),
            ("mi_weight", self.mi_weight),
            ("margin_px", self.margin_px),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return bad(k, "must be a finite number ≥ 0");
            }
        }
        if self.beam_tolerance_deg < 1e-3 {
            return bad("beam_tolerance_deg", "must be at least 0.001°");
        }
        Ok(())
    }
}

/// The image blurred by `sigma_px`, or itself when `sigma_px` is 0.
fn blurred(gray: &GrayImage, sigma_px: f32) -> GrayImage {
    if sigma_px > 0.0 { image::imageops::blur(gray, sigma_px) } else { gray.clone() }
}

/// Edge strength of an image spread by an inverse distance transform, values in [0, 1].
#[derive(Debug, Clone)]
pub struct EdgeMap {
    /// Width, px.
    pub width: usize,
    /// Height, px.
    pub height: usize,
    /// Row-major values.
    pub data: Vec<f32>,
}

/// Gradient magnitude of a blurred image (Sobel), scaled so that its 99th percentile is 1.
pub fn edge_strength(gray: &GrayImage, blur_sigma_px: f32) -> EdgeMap {
    let img = blurred(gray, if blur_sigma_px.is_normal() { blur_sigma_px.abs() } else { 0.0 });
    let (w, h) = (img.width() as usize, img.height() as usize);
    let px = |x: usize, y: usize| img.as_raw()[y * w + x] as f32;
    let mut data = vec![0f32; w * h];
    if w >= 3 && h >= 3 {
        data.par_chunks_mut(w).enumerate().skip(1).take(h - 2).for_each(|(y, row)| {
            for (x, out) in row.iter_mut().enumerate().take(w - 1).skip(1) {
                let gx = px(x + 1, y - 1) + 2.0 * px(x + 1, y) + px(x + 1, y + 1)
                    - px(x - 1, y - 1)
                    - 2.0 * px(x - 1, y)
                    - px(x - 1, y + 1);
                let gy = px(x - 1, y + 1) + 2.0 * px(x, y + 1) + px(x + 1, y + 1)
                    - px(x - 1, y - 1)
                    - 2.0 * px(x, y - 1)
                    - px(x + 1, y - 1);
                *out = (gx * gx + gy * gy).sqrt();
            }
        });
    }
    let mut sorted: Vec<f32> = data.iter().copied().filter(|v| *v > 0.0).collect();
    let scale = if sorted.is_empty() {
        1.0
    } else {
        let k = (sorted.len() - 1) * 99 / 100;
        *sorted.select_nth_unstable_by(k, f32::total_cmp).1
    };
    for v in &mut data {
        *v = (*v / scale.max(1e-6)).min(1.0);
    }
    EdgeMap { width: w, height: h, data }
}

impl EdgeMap {
    /// Levinson's score image: `alpha·E + (1 − alpha)·max over pixels q of E(q)·gamma^d(p, q)`,
    /// d the chessboard distance; two raster passes.
    pub fn spread(&self, gamma: f32, alpha: f32) -> EdgeMap {
        let (w, h) = (self.width, self.height);
        let mut d = self.data.clone();
        // Forward raster pass (left, upper row) then the mirrored backward pass.
        for forward in [true, false] {
            for k in 0..w * h {
                let (x, y) = if forward { (k % w, k / w) } else { (w - 1 - k % w, h - 1 - k / w) };
                let (back_x, back_y) = if forward {
                    (x.checked_sub(1), y.checked_sub(1))
                } else {
                    (Some(x + 1).filter(|v| *v < w), Some(y + 1).filter(|v| *v < h))
                };
                let mut m = d[y * w + x];
                if let Some(bx) = back_x {
                    m = m.max(gamma * d[y * w + bx]);
                }
                if let Some(by) = back_y {
                    let r = by * w;
                    for nx in
                        [x.checked_sub(1), Some(x), Some(x + 1).filter(|v| *v < w)].into_iter().flatten()
                    {
                        m = m.max(gamma * d[r + nx]);
                    }
                }
                d[y * w + x] = m;
            }
        }
        let data = self.data.iter().zip(&d).map(|(e, s)| alpha * e + (1.0 - alpha) * s).collect();
        EdgeMap { width: w, height: h, data }
    }

    /// Bilinear value at pixel (u, v) (pixel centres at integers); `None` outside.
    pub fn sample(&self, u: f64, v: f64) -> Option<f32> {
        // Compared as floats: NaN and huge values never reach the integer casts.
        if !(u >= 0.0 && v >= 0.0 && u < (self.width as f64 - 1.0) && v < (self.height as f64 - 1.0)) {
            return None;
        }
        let (x0, y0) = (u as usize, v as usize);
        let (fx, fy) = ((u - x0 as f64) as f32, (v - y0 as f64) as f32);
        let i = y0 * self.width + x0;
        let d = &self.data;
        let top = d[i] + fx * (d[i + 1] - d[i]);
        let bot = d[i + self.width] + fx * (d[i + self.width + 1] - d[i + self.width]);
        Some(top + fy * (bot - top))
    }
}

/// LiDAR points on edges, in the LiDAR frame, with weights in (0, 1].
#[derive(Debug, Clone, Default)]
pub struct LidarEdges {
    /// Edge points.
    pub points: Vec<Vector3<f64>>,
    /// Their weights.
    pub weights: Vec<f64>,
    /// How many are depth edges (the rest are intensity edges; a point can be both).
    pub depth_edges: usize,
    /// How many are intensity edges.
    pub intensity_edges: usize,
}

/// A LiDAR scan in its sensor frame.
#[derive(Debug, Clone, Default)]
pub struct Scan {
    /// Positions, metres.
    pub points: Vec<[f64; 3]>,
    /// Return strength per point, when the file has it.
    pub intensity: Option<Vec<f32>>,
    /// Laser index per point, when the file has it.
    pub ring: Option<Vec<u16>>,
}

/// Finds depth and intensity edges along the beams of one scan. Neighbours along a beam are the
/// nearest points in azimuth on each side of the same ring; without a ring channel, of the same
/// elevation within `beam_tolerance_deg`, so scans in any point order work.
pub fn lidar_edges(scan: &Scan, cfg: &TargetlessConfig) -> LidarEdges {
    let (points, intensity, ring) = (&scan.points, scan.intensity.as_deref(), scan.ring.as_deref());
    struct P {
        az: f64,
        el: f64,
        r: f64,
        i: usize,
    }
    let pts: Vec<P> = points
        .iter()
        .enumerate()
        .filter_map(|(i, p)| {
            let r = (p[0] * p[0] + p[1] * p[1] + p[2] * p[2]).sqrt();
            (r.is_finite() && r >= cfg.min_range_m && r <= cfg.max_range_m).then(|| P {
                az: p[1].atan2(p[0]).to_degrees(),
                el: (p[2] / r).asin().to_degrees(),
                r,
                i,
            })
        })
        .collect();
    let i99 = intensity.map(|v| {
        let mut s: Vec<f32> = pts.iter().map(|p| v[p.i]).collect();
        if s.is_empty() {
            return 1.0;
        }
        let k = (s.len() - 1) * 99 / 100;
        (*s.select_nth_unstable_by(k, f32::total_cmp).1 as f64).max(1e-6)
    });
    // Buckets of one ring, or of elevation bands `beam_tolerance_deg` wide, sorted by azimuth.
    let tol = cfg.beam_tolerance_deg;
    let key = |p: &P| match ring {
        Some(r) => r[p.i] as i64,
        None => (p.el / tol).floor() as i64,
    };
    let mut buckets: std::collections::HashMap<i64, Vec<usize>> = std::collections::HashMap::new();
    for (k, p) in pts.iter().enumerate() {
        buckets.entry(key(p)).or_default().push(k);
    }
    for b in buckets.values_mut() {
        b.sort_by(|&a, &c| pts[a].az.total_cmp(&pts[c].az));
    }
    // Nearest neighbour along the beam on one side (`dir` = ±1), if within the gap.
    // Also says whether the beam goes on beyond the gap (a hole in the returns, not the end of
    // the sensor's field of view).
    let neighbour = |k: usize, dir: f64| -> (Option<usize>, bool) {
        let p = &pts[k];
        let mut best: Option<(f64, usize)> = None;
        let mut beyond = false;
        let near: &[i64] = if ring.is_some() { &[0] } else { &[-1, 0, 1] };
        for b in near.iter().map(|d| key(p) + d) {
            let Some(list) = buckets.get(&b) else { continue };
            let pos = list.partition_point(|&j| pts[j].az < p.az);
            let side: Box<dyn Iterator<Item = &usize>> =
                if dir > 0.0 { Box::new(list[pos..].iter()) } else { Box::new(list[..pos].iter().rev()) };
            for &j in side {
                let q = &pts[j];
                let daz = (q.az - p.az) * dir;
                if j == k || daz <= 0.0 || (ring.is_none() && (q.el - p.el).abs() >= tol) {
                    // Another beam's point: a whole field of view of them ends the search too.
                    if daz > 2.0 * cfg.max_azimuth_gap_deg {
                        break;
                    }
                    continue;
                }
                if daz > cfg.max_azimuth_gap_deg {
                    beyond = true;
                    break;
                }
                // The first match in a bucket is its nearest on this side.
                if best.is_none_or(|b| daz < b.0) {
                    best = Some((daz, j));
                }
                break;
            }
        }
        (best.map(|b| b.1), beyond)
    };
    /// Weight, is a depth edge, is an intensity edge, position.
    type Found = (f64, bool, bool, Vector3<f64>);
    let found: Vec<Option<Found>> = (0..pts.len())
        .into_par_iter()
        .map(|k| {
            let p = &pts[k];
            let (left, right) = (neighbour(k, -1.0), neighbour(k, 1.0));
            let side = [left.0, right.0];
            let hole = [left.0.is_none() && left.1, right.0.is_none() && right.1];
            // The surface continues on a side when that neighbour is at about the same range.
            let cont = cfg.continuity_m + cfg.depth_jump_ratio * 0.4 * p.r;
            let continues = |s: Option<usize>| s.is_some_and(|j| (pts[j].r - p.r).abs() < cont);
            let (mut depth, mut bright) = (0f64, 0f64);
            // The neighbour across each kind of edge (none for a silhouette against the sky).
            let (mut across_depth, mut across_bright) = (None, None);
            for (s, other, hole) in [(side[0], side[1], hole[0]), (side[1], side[0], hole[1])] {
                // A depth edge is the rim of a surface: continuous on one side, and on the
                // other a jump back (or no return at all: sky behind a pole). Scattered
                // points (fence bars, foliage) have no continuous side and are skipped.
                if continues(other) {
                    match s {
                        Some(j) if pts[j].r - p.r > depth => {
                            depth = pts[j].r - p.r;
                            across_depth = Some(j);
                        }
                        Some(_) => {}
                        None if hole && p.r < cfg.silhouette_range_m => {
                            depth = depth.max(cfg.depth_jump_m * 2.0)
                        }
                        None => {}
                    }
                }
                // An intensity edge is a bright point beside a darker one on the same surface.
                if let (Some(j), Some(v), Some(sc)) = (s, intensity, i99)
                    && continues(s)
                {
                    let (a, b) = (v[p.i] as f64, v[pts[j].i] as f64);
                    if a > cfg.intensity_ratio * b && (a - b) / sc > bright {
                        bright = (a - b) / sc;
                        across_bright = Some(j);
                    }
                }
            }
            let is_depth = depth > cfg.depth_jump_m.max(cfg.depth_jump_ratio * p.r);
            let is_bright = bright > cfg.intensity_step;
            if !(is_depth || is_bright) {
                return None;
            }
            // Levinson's weight: square root of the step, each kind scaled to (0, 1].
            let wd = if is_depth { (depth.min(5.0) / 5.0).sqrt() } else { 0.0 };
            let wi = if is_bright { bright.min(1.0).sqrt() } else { 0.0 };
            // The edge lies between the two returns, not on the one that saw the surface:
            // halfway across in bearing (depth: at the near surface's range), or halfway on
            // the surface (paint).
            let here = Vector3::from(points[p.i]);
            let at = |j: usize| Vector3::from(points[pts[j].i]);
            let pos = match (is_bright && wi >= wd, across_bright, across_depth) {
                (true, Some(j), _) => 0.5 * (here + at(j)),
                (_, _, Some(j)) if is_depth => (here / p.r + at(j) / pts[j].r).normalize() * p.r,
                _ => here,
            };
            Some((wd.max(wi), is_depth, is_bright, pos))
        })
        .collect();
    let mut out = LidarEdges::default();
    for (w, d, b, pos) in found.into_iter().flatten() {
        out.points.push(pos);
        out.weights.push(w);
        out.depth_edges += d as usize;
        out.intensity_edges += b as usize;
    }
    out
}

/// One camera image with the LiDAR scan taken with it.
#[derive(Debug, Clone)]
pub struct ScenePair {
    /// A name for reports.
    pub name: String,
    /// The camera.
    pub camera: CameraIntrinsics,
    /// Image edge strength ([`edge_strength`]).
    pub edges: EdgeMap,
    /// LiDAR edges ([`lidar_edges`]).
    pub lidar: LidarEdges,
    /// The grey image, for the mutual-information term.
    pub gray: GrayImage,
    /// Points with intensity for the mutual-information term (LiDAR frame, range band)...
    pub reflect_points: Vec<Vector3<f64>>,
    /// ... and their intensity bin (rank-equalised into [`MI_BINS`] bins).
    pub reflect_bins: Vec<u8>,
    /// The scan, for the paint check that chooses among searches.
    pub scan: Scan,
}

/// Histogram bins per axis of the mutual-information term.
pub const MI_BINS: usize = 16;

/// Intensities of the points in the range band, rank-equalised into [`MI_BINS`] bins.
fn reflectivity_bins(
    points: &[[f64; 3]],
    intensity: &[f32],
    cfg: &TargetlessConfig,
) -> (Vec<Vector3<f64>>, Vec<u8>) {
    let keep: Vec<usize> = (0..points.len())
        .filter(|&i| {
            let r = Vector3::from(points[i]).norm();
            r >= cfg.min_range_m && r <= cfg.max_range_m && intensity[i].is_finite()
        })
        .collect();
    let mut sorted: Vec<f32> = keep.iter().map(|&i| intensity[i]).collect();
    sorted.sort_by(f32::total_cmp);
    let edges: Vec<f32> =
        (1..MI_BINS).map(|b| sorted.get(b * sorted.len() / MI_BINS).copied().unwrap_or(0.0)).collect();
    let bins = keep.iter().map(|&i| edges.partition_point(|e| *e <= intensity[i]) as u8).collect();
    (keep.iter().map(|&i| Vector3::from(points[i])).collect(), bins)
}

/// Mutual information (nats) between LiDAR intensity bins and the grey value (in
/// [`MI_BINS`] bins) of the pixels the points project to; points outside the image are left out.
fn mutual_information(
    gray: &GrayImage,
    cam: &CameraIntrinsics,
    pts: &[Vector3<f64>],
    bins: &[u8],
    t: &Isometry3<f64>,
) -> f64 {
    let mut joint = [[0u32; MI_BINS]; MI_BINS];
    let mut n = 0u32;
    let (w, h) = (gray.width() as f64, gray.height() as f64);
    for (p, &b) in pts.iter().zip(bins) {
        let q = t * hdmap_core::nalgebra::Point3::from(*p);
        if let Some([u, v]) = cam.project(&q.coords)
            && u >= 0.0
            && v >= 0.0
            && u < w
            && v < h
        {
            let g = gray.as_raw()[v as usize * gray.width() as usize + u as usize] as usize * MI_BINS / 256;
            joint[b as usize][g] += 1;
            n += 1;
        }
    }
    if n == 0 {
        return 0.0;
    }
    let n = n as f64;
    let px: Vec<f64> = joint.iter().map(|r| r.iter().sum::<u32>() as f64 / n).collect();
    let py: Vec<f64> = (0..MI_BINS).map(|g| joint.iter().map(|r| r[g]).sum::<u32>() as f64 / n).collect();
    let mut mi = 0.0;
    for (a, row) in joint.iter().enumerate() {
        for (g, &c) in row.iter().enumerate() {
            if c > 0 {
                let pxy = c as f64 / n;
                mi += pxy * (pxy / (px[a] * py[g])).ln();
            }
        }
    }
    mi
}

impl ScenePair {
    /// Builds a pair from a grey image and a scan (LiDAR frame, optional intensity).
    pub fn new(
        name: impl Into<String>,
        camera: CameraIntrinsics,
        image: &GrayImage,
        scan: &Scan,
        cfg: &TargetlessConfig,
    ) -> Result<Self, CalibError> {
        let name = name.into();
        if (image.width(), image.height()) != (camera.width, camera.height) {
            return Err(CalibError::Degenerate(format!(
                "{name}: image is {}×{} px but the camera model is {}×{}",
                image.width(),
                image.height(),
                camera.width,
                camera.height
            )));
        }
        let n = scan.points.len();
        if scan.intensity.as_ref().is_some_and(|v| v.len() != n)
            || scan.ring.as_ref().is_some_and(|v| v.len() != n)
        {
            return Err(CalibError::Degenerate(format!("{name}: intensity/ring and point counts differ")));
        }
        let lidar = lidar_edges(scan, cfg);
        let (reflect_points, reflect_bins) =
            scan.intensity.as_ref().map(|v| reflectivity_bins(&scan.points, v, cfg)).unwrap_or_default();
        Ok(Self {
            name,
            camera,
            edges: edge_strength(image, cfg.blur_sigma_px),
            lidar,
            gray: image.clone(),
            reflect_points,
            reflect_bins,
            scan: scan.clone(),
        })
    }
}

/// What the refinement found.
#[derive(Debug, Clone, Serialize)]
pub struct TargetlessResult {
    /// The refined extrinsic.
    pub camera_from_lidar: Isometry3<f64>,
    /// Objective (edge score + weighted mutual information, finest stage) at the guess, per pair.
    pub score_initial: Vec<f64>,
    /// ... and at the result.
    pub score_final: Vec<f64>,
    /// LiDAR edge points scored per pair (inside the image at the guess).
    pub edge_points: Vec<usize>,
    /// Score evaluations spent.
    pub evaluations: usize,
    /// Paint crossings that agree ([`crate::paint_check`], within `paint_tolerance_deg`), all
    /// pairs, at the guess...
    pub paint_agreeing_initial: usize,
    /// ... and at the result.
    pub paint_agreeing_final: usize,
    /// Which search gave the result: 0 the one from the guess, k the k-th restart.
    pub chosen_search: usize,
}

/// Weighted mean of a score image under the projected edges.
fn score(map: &EdgeMap, cam: &CameraIntrinsics, pts: &[Vector3<f64>], w: &[f64], t: &Isometry3<f64>) -> f64 {
    let (mut s, mut total) = (0.0, 0.0);
    for (p, &wi) in pts.iter().zip(w) {
        total += wi;
        let q = t * hdmap_core::nalgebra::Point3::from(*p);
        if let Some([u, v]) = cam.project(&q.coords)
            && let Some(e) = map.sample(u, v)
        {
            s += wi * e as f64;
        }
    }
    if total > 0.0 { s / total } else { 0.0 }
}

/// A small motion applied on the camera side: rotation vector (rad) and translation (m).
fn perturb(rotation_rad: Vector3<f64>, translation_m: Vector3<f64>) -> Isometry3<f64> {
    hdmap_core::pose::exp_left(&Vector6::new(
        translation_m.x,
        translation_m.y,
        translation_m.z,
        rotation_rad.x,
        rotation_rad.y,
        rotation_rad.z,
    ))
}

/// Refines `camera_from_lidar` from a guess on one or more pairs of the same rig: a search
/// from the guess and `restarts` more from around it; among those scoring no worse than the
/// guess, the one that lines up the most road paint ([`crate::paint_check`]) is taken, or the
/// highest-scoring one when too little paint agrees anywhere.
pub fn refine_targetless(
    pairs: &[ScenePair],
    guess: &Isometry3<f64>,
    cfg: &TargetlessConfig,
) -> Result<TargetlessResult, CalibError> {
    cfg.validate()?;
    if pairs.is_empty() {
        return Err(CalibError::Degenerate(
            "targetless refinement needs at least one image/scan pair".into(),
        ));
    }
    // Keep the points that project inside the image (with margin) at the guess.
    let in_view = |p: &ScenePair, x: &Vector3<f64>| {
        let m = cfg.margin_px;
        let (w, h) = (p.camera.width as f64, p.camera.height as f64);
        let q = guess * hdmap_core::nalgebra::Point3::from(*x);
        p.camera.project(&q.coords).is_some_and(|[u, v]| u > -m && v > -m && u < w + m && v < h + m)
    };
    // Points with a per-point value (edge weight, intensity bin), those in view kept.
    fn in_view_of<T: Copy>(
        pts: &[Vector3<f64>],
        vals: &[T],
        keep: impl Fn(&Vector3<f64>) -> bool,
    ) -> (Vec<Vector3<f64>>, Vec<T>) {
        pts.iter().zip(vals).filter(|(x, _)| keep(x)).map(|(x, v)| (*x, *v)).unzip()
    }
    let kept: Vec<(Vec<Vector3<f64>>, Vec<f64>)> =
        pairs.iter().map(|p| in_view_of(&p.lidar.points, &p.lidar.weights, |x| in_view(p, x))).collect();
    let kept_mi: Vec<(Vec<Vector3<f64>>, Vec<u8>)> =
        pairs.iter().map(|p| in_view_of(&p.reflect_points, &p.reflect_bins, |x| in_view(p, x))).collect();
    for (p, k) in pairs.iter().zip(&kept) {
        if k.0.len() < 50 {
            return Err(CalibError::Degenerate(format!(
                "{}: only {} LiDAR edge points fall in the image at the guess (need 50)",
                p.name,
                k.0.len()
            )));
        }
    }
    // Per pair and stage: the edge score image and the blurred grey image.
    let objective = |maps: &[(EdgeMap, GrayImage)], t: &Isometry3<f64>| -> Vec<f64> {
        pairs
            .iter()
            .zip(maps)
            .zip(kept.iter().zip(&kept_mi))
            .map(|((p, (m, g)), (k, r))| {
                let mi = if cfg.mi_weight > 0.0 {
                    cfg.mi_weight * mutual_information(g, &p.camera, &r.0, &r.1, t)
                } else {
                    0.0
                };
                cfg.edge_weight * score(m, &p.camera, &k.0, &k.1, t) + mi
            })
            .collect()
    };
    let total = |maps: &[(EdgeMap, GrayImage)], t: &Isometry3<f64>| -> f64 {
        objective(maps, t).iter().sum::<f64>() / pairs.len() as f64
    };
    // Neighbourhood of the search: 3³ − 1 rotation steps, or 3⁶ − 1 steps of rotation and
    // translation.
    let neighbourhood = |translation: bool| -> Vec<[f64; 6]> {
        (0..729)
            .filter(|&i| i != 364 && (translation || i / 27 == 13))
            .map(|i| {
                let mut d = [0.0; 6];
                let mut r = i;
                for v in &mut d {
                    *v = (r % 3) as f64 - 1.0;
                    r /= 3;
                }
                d
            })
            .collect()
    };
    let stages: Vec<Vec<(EdgeMap, GrayImage)>> = cfg
        .gammas
        .iter()
        .enumerate()
        .map(|(stage, &gamma)| {
            let sigma = cfg.mi_blur_px.get(stage).copied().unwrap_or(0.0);
            pairs.iter().map(|p| (p.edges.spread(gamma, cfg.alpha), blurred(&p.gray, sigma))).collect()
        })
        .collect();
    let search = |start: Isometry3<f64>, offsets: &[[f64; 6]]| -> (Isometry3<f64>, usize) {
        let mut current = start;
        let mut evaluations = 0;
        for (stage, maps) in stages.iter().enumerate() {
            let shrink = 0.5f64.powi(stage as i32);
            let (mut sr, mut st) = ((cfg.step_deg * shrink).to_radians(), cfg.step_m * shrink);
            let mut best = total(maps, &current);
            while sr.to_degrees() >= cfg.min_step_deg {
                let cand: Vec<(f64, Isometry3<f64>)> = offsets
                    .par_iter()
                    .map(|o| {
                        let t =
                            perturb(Vector3::new(o[0], o[1], o[2]) * sr, Vector3::new(o[3], o[4], o[5]) * st)
                                * current;
                        (total(maps, &t), t)
                    })
                    .collect();
                evaluations += cand.len();
                let (s, t) =
                    cand.into_iter().max_by(|a, b| a.0.total_cmp(&b.0)).expect("at least 26 candidates");
                if s > best + 1e-9 {
                    best = s;
                    current = t;
                } else {
                    sr *= 0.5;
                    st *= 0.5;
                }
            }
        }
        (current, evaluations)
    };
    let finest = stages.last().expect("gammas validated non-empty");
    let check = crate::paint_check::PaintCheck::default();
    let agreeing = |t: &Isometry3<f64>| -> usize {
        pairs
            .iter()
            .map(|p| {
                let tol_px = p.camera.fx * cfg.paint_tolerance_deg.to_radians();
                crate::paint_check::paint_crossings(&p.scan, &p.gray, &p.camera, t, &check)
                    .iter()
                    .filter(|c| c.offset_px.abs() <= tol_px)
                    .count()
            })
            .sum()
    };
    let at_guess = total(finest, guess);
    let mut evaluations = 0;
    // (search, result, objective, agreeing paint crossings)
    let mut found: Vec<(usize, Isometry3<f64>, f64, usize)> = Vec::new();
    // The rotation is searched from the guess and from the restarts; the lever arm, when asked
    // for, afterwards from the chosen rotation only (it is local: a few centimetres).
    let rotation_steps = neighbourhood(false);
    for k in 0..=cfg.restarts {
        let start = if k == 0 { *guess } else { perturbed_guess(guess, k as u64, cfg.restart_deg, 0.0) };
        let (t, n) = search(start, &rotation_steps);
        evaluations += n;
        let score = total(finest, &t);
        // A restart must do at least as well as the guess on the objective.
        if k == 0 || score >= at_guess {
            found.push((k, t, score, agreeing(&t)));
        }
    }
    let by_paint = found.iter().map(|f| f.3).max().unwrap_or(0) >= cfg.min_paint_crossings;
    let (chosen_search, mut current, _, mut paint_final) = *found
        .iter()
        .max_by(|a, b| {
            let key = |f: &(usize, Isometry3<f64>, f64, usize)| (if by_paint { f.3 } else { 0 }, f.2);
            let (ka, kb) = (key(a), key(b));
            ka.0.cmp(&kb.0).then(ka.1.total_cmp(&kb.1))
        })
        .expect("the search from the guess is always kept");
    if cfg.translation {
        let (t, n) = search(current, &neighbourhood(true));
        evaluations += n;
        current = t;
        paint_final = agreeing(&t);
    }
    Ok(TargetlessResult {
        camera_from_lidar: current,
        score_initial: objective(finest, guess),
        score_final: objective(finest, &current),
        edge_points: kept.iter().map(|k| k.0.len()).collect(),
        evaluations,
        paint_agreeing_initial: agreeing(guess),
        paint_agreeing_final: paint_final,
        chosen_search,
    })
}

/// Rotation angle (degrees) and distance between the sensor positions (metres) of two
/// `camera_from_lidar` transforms: the lever arm compared in the LiDAR frame.
pub fn extrinsic_difference(a: &Isometry3<f64>, b: &Isometry3<f64>) -> (f64, f64) {
    let deg = (a.rotation.inverse() * b.rotation).angle().to_degrees();
    let ca = a.inverse().translation.vector;
    let cb = b.inverse().translation.vector;
    (deg, (ca - cb).norm())
}

/// A LiDAR scan in its sensor frame from a PCD, KITTI `.bin` or LAS/LAZ file.
pub fn read_scan(path: &std::path::Path) -> Result<Scan, CalibError> {
    let cloud = hdmap_io::scan::read_scan(path)?;
    if cloud.is_empty() {
        return Err(CalibError::NoData {
            path: path.to_path_buf(),
            message: "the scan has no points".into(),
        });
    }
    Ok(Scan { points: cloud.positions.iter().collect(), intensity: cloud.intensity, ring: cloud.ring })
}

impl ScenePair {
    /// Reads an image and a scan ([`read_scan`]) and builds the pair.
    pub fn from_files(
        camera: CameraIntrinsics,
        image: &std::path::Path,
        scan: &std::path::Path,
        cfg: &TargetlessConfig,
    ) -> Result<Self, CalibError> {
        let gray = hdmap_io::image::read_image(image)?.to_luma8();
        let scan = read_scan(scan)?;
        Self::new(image.display().to_string(), camera, &gray, &scan, cfg)
    }
}

/// The image with the scan's points drawn on it, coloured by range (near red → far blue), for
/// checking an extrinsic by eye.
pub fn overlay(
    image: &image::RgbImage,
    camera: &CameraIntrinsics,
    points: &[[f64; 3]],
    camera_from_lidar: &Isometry3<f64>,
    max_range_m: f64,
) -> image::RgbImage {
    let mut out = image.clone();
    let (w, h) = (out.width() as i64, out.height() as i64);
    for p in points {
        let q = camera_from_lidar * hdmap_core::nalgebra::Point3::new(p[0], p[1], p[2]);
        let Some([u, v]) = camera.project(&q.coords) else { continue };
        let r = q.coords.norm();
        if r > max_range_m {
            continue;
        }
        // Hue from red (near) through green to blue (far), on a square-root scale.
        let t = (r / max_range_m).sqrt();
        let c = if t < 0.5 {
            [255.0 * (1.0 - 2.0 * t), 255.0 * 2.0 * t, 0.0]
        } else {
            [0.0, 255.0 * (2.0 - 2.0 * t), 255.0 * (2.0 * t - 1.0)]
        };
        if !(u > -2.0 && v > -2.0 && u < w as f64 + 1.0 && v < h as f64 + 1.0) {
            continue;
        }
        let (x, y) = (u.round() as i64, v.round() as i64);
        for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
            let (px, py) = (x + dx, y + dy);
            if px >= 0 && py >= 0 && px < w && py < h {
                out.put_pixel(px as u32, py as u32, image::Rgb([c[0] as u8, c[1] as u8, c[2] as u8]));
            }
        }
    }
    out
}

/// A guess for robustness checks: `camera_from_lidar` moved on the camera side by a seeded
/// draw, uniform in ±`deg` about each axis and ±`m` along each axis.
pub fn perturbed_guess(camera_from_lidar: &Isometry3<f64>, seed: u64, deg: f64, m: f64) -> Isometry3<f64> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut u = |a: f64| rng.random_range(-a..=a);
    let r = Vector3::new(u(deg), u(deg), u(deg)).map(f64::to_radians);
    let t = Vector3::new(u(m), u(m), u(m));
    perturb(r, t) * camera_from_lidar
}

/// Mutual information of `camera_from_lidar` (mean over the pairs) with the image blurred by
/// `blur_sigma_px` (0: sharp).
pub fn mean_mutual_information(
    pairs: &[ScenePair],
    camera_from_lidar: &Isometry3<f64>,
    blur_sigma_px: f32,
) -> f64 {
    let s: f64 = pairs
        .iter()
        .map(|p| {
            let g = blurred(&p.gray, blur_sigma_px);
            mutual_information(&g, &p.camera, &p.reflect_points, &p.reflect_bins, camera_from_lidar)
        })
        .sum();
    s / pairs.len().max(1) as f64
}

/// Mean edge score of `camera_from_lidar` over the pairs on the score image of one `gamma`
/// (all LiDAR edges counted, those projecting outside the image as zero).
pub fn mean_score(pairs: &[ScenePair], camera_from_lidar: &Isometry3<f64>, gamma: f32, alpha: f32) -> f64 {
    let s: f64 = pairs
        .iter()
        .map(|p| {
            score(
                &p.edges.spread(gamma, alpha),
                &p.camera,
                &p.lidar.points,
                &p.lidar.weights,
                camera_from_lidar,
            )
        })
        .sum();
    s / pairs.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn spread_equals_the_brute_force_definition() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let (w, h) = (23, 17);
        let data: Vec<f32> =
            (0..w * h).map(|_| if rng.random_bool(0.05) { rng.random() } else { 0.0 }).collect();
        let e = EdgeMap { width: w, height: h, data };
        let (gamma, alpha) = (0.8f32, 0.25f32);
        let s = e.spread(gamma, alpha);
        for y in 0..h {
            for x in 0..w {
                let mut m = 0f32;
                for qy in 0..h {
                    for qx in 0..w {
                        let d = x.abs_diff(qx).max(y.abs_diff(qy)) as i32;
                        m = m.max(e.data[qy * w + qx] * gamma.powi(d));
                    }
                }
                let want = alpha * e.data[y * w + x] + (1.0 - alpha) * m;
                assert!(
                    (s.data[y * w + x] - want).abs() < 1e-5,
                    "({x},{y}): {} vs {want}",
                    s.data[y * w + x]
                );
            }
        }
    }

    /// A 16-beam scan of a wall 20 m ahead with a 0.3 m pole 8 m ahead and a bright stripe on
    /// the ground: the pole's outermost points are depth edges, the stripe's rims intensity
    /// edges, and the wall and the plain ground give none.
    #[test]
    fn finds_pole_rims_and_paint_rims_only() {
        let mut pts = Vec::new();
        let mut inten = Vec::new();
        for b in 0..16 {
            let el = (-15.0 + 2.0 * b as f64).to_radians();
            for a in 0..600 {
                let az = (-30.0 + 0.1 * a as f64).to_radians();
                let d = Vector3::new(el.cos() * az.cos(), el.cos() * az.sin(), el.sin());
                // Ground at z = -1.8, wall at x = 20, pole: |y| < 0.15 at x = 8.
                let mut t = f64::INFINITY;
                let mut bright = false;
                if d.z < 0.0 {
                    t = -1.8 / d.z;
                }
                if d.x > 0.0 && 20.0 / d.x < t {
                    t = 20.0 / d.x;
                }
                let tp = 8.0 / d.x;
                if (tp * d.y).abs() < 0.15 && tp < t {
                    t = tp;
                }
                let p = d * t;
                if d.z < 0.0 && (t - -1.8 / d.z).abs() < 1e-9 && (p.y - 2.0).abs() < 0.075 {
                    bright = true;
                }
                if t.is_finite() && t < 60.0 {
                    pts.push([p.x, p.y, p.z]);
                    inten.push(if bright { 200.0 } else { 20.0 });
                }
            }
        }
        let cfg = TargetlessConfig { beam_tolerance_deg: 0.5, ..TargetlessConfig::default() };
        let e = lidar_edges(&Scan { points: pts, intensity: Some(inten), ring: None }, &cfg);
        assert!(
            e.depth_edges > 0 && e.intensity_edges > 0,
            "{} depth, {} intensity",
            e.depth_edges,
            e.intensity_edges
        );
        for p in &e.points {
            // Edges sit halfway between the two returns across them: within half an azimuth
            // step (0.05°, ≤ 2 cm here) of the pole's silhouette or of the stripe's rim.
            let on_pole_rim = (p.x - 8.0).abs() < 0.02 && (p.y.abs() - 0.15).abs() < 0.02;
            let on_stripe = (p.z + 1.8).abs() < 1e-6 && ((p.y - 2.0).abs() - 0.075).abs() < 0.02;
            assert!(on_pole_rim || on_stripe, "edge at {p:?} is neither a pole rim nor paint");
        }
    }
}
