//! The visual feature layer: keypoints and binary descriptors from a drive's camera images,
//! matched across nearby images under the registered poses, triangulated, filtered, and
//! exported as kapture 1.1 (NAVER LABS) so that camera-only localization can run against it.
//!
//! * **Features** ([`extract`]): contrast-limited histogram equalisation ([`equalise`], so that
//!   another exposure or time of day moves few corners), FAST-9 corners (imageproc) on a
//!   3-level image pyramid, the strongest corner per grid cell (spread and non-maximum
//!   suppression in one), and a 256-bit BRIEF descriptor (5 × 5 box means compared at 256 seeded Gaussian test pairs, fixed by
//!   [`DESCRIPTOR_TYPE`]). Upright, as a road vehicle's forward camera allows: no rotation
//!   invariance is paid for.
//! * **Matching** ([`build_visual`]): every image against the next `pair_window` images;
//!   candidates within `epipolar_px` of the epipolar line the known relative pose gives, then
//!   mutual nearest neighbours in Hamming distance with a ratio test.
//! * **Tracks**: matches joined into tracks (union–find); a track seen twice in one image is
//!   dropped.
//! * **Points**: linear (midpoint) triangulation refined by Gauss–Newton on the reprojection
//!   error; kept when seen in `min_views` images within `max_reprojection_px`, in front of every
//!   camera within `max_depth_m`, and with rays at least `min_parallax_deg` apart.
//!
//! The map frame is the map origin's local frame (CRS coordinates minus the origin), written in
//! `hdmap_visual.json` beside the kapture files together with the feature definitions.

use std::collections::HashMap;
use std::sync::OnceLock;

use hdmap_core::nalgebra::{Isometry3, Matrix3, Point3, Translation3, Vector3};
use hdmap_core::{CameraIntrinsics, CoreError, Distortion, FrameId, GeoOrigin, Rig, Trajectory};
use hdmap_io::kapture::{FeatureFiles, Kapture, Observation, PoseRecord, Record, Sensor};
use image::GrayImage;
use rand::SeedableRng;
use rand_distr::Distribution;
use rayon::prelude::*;

use crate::FeaturesError;

/// kapture keypoint type of the layer (float32 x, y in pixels of the full image).
pub const KEYPOINTS_TYPE: &str = "hdmap_fast9";
/// kapture descriptor type (uint8 × 32, Hamming). The test pairs follow from
/// [`BRIEF_SEED`]; a change to them is a new type name.
pub const DESCRIPTOR_TYPE: &str = "hdmap_brief256_v1";
/// Seed of the BRIEF test pairs (ChaCha8, Gaussian σ = 6.6 px around the keypoint).
pub const BRIEF_SEED: u64 = 0x4844_4d41_5042_5231;
/// File of the layer's own metadata inside the kapture folder.
pub const METADATA_FILE: &str = "hdmap_visual.json";
/// kapture sensor id of camera 0.
pub const CAMERA_ID: &str = "camera0";

/// A 256-bit binary descriptor.
pub type Descriptor = [u8; 32];

/// `[features.visual]`: feature extraction, matching and triangulation.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VisualConfig {
    /// Contrast-limited histogram equalisation of each image before detection, its slope
    /// limited to this factor (0 = off): exposure, gain and gamma changes (another time of
    /// day) then leave corners and descriptors nearly unchanged, while the sensor noise of
    /// large flat areas (sky, asphalt) is amplified at most this much.
    pub equalise_clip: f64,
    /// Features kept per image, all pyramid levels together.
    pub max_features: usize,
    /// FAST-9 threshold, grey levels.
    pub fast_threshold: u8,
    /// Pyramid levels.
    pub levels: usize,
    /// Scale between pyramid levels.
    pub level_scale: f64,
    /// Grid cell, px of each level: at most one feature per cell.
    pub cell_px: u32,
    /// Largest Hamming distance of a match, bits of 256.
    pub max_hamming: u32,
    /// Nearest over second-nearest distance above which a match is ambiguous.
    pub ratio: f64,
    /// Each image is matched against this many following images.
    pub pair_window: usize,
    /// Largest distance of a match from the epipolar line, px of the coarser feature's level.
    pub epipolar_px: f64,
    /// Images a point must be seen in.
    pub min_views: usize,
    /// Largest reprojection error of a kept observation, px of its level.
    pub max_reprojection_px: f64,
    /// Smallest angle between a point's viewing rays, degrees.
    pub min_parallax_deg: f64,
    /// Farthest point from a camera that sees it, m.
    pub max_depth_m: f64,
}

impl Default for VisualConfig {
    fn default() -> Self {
        Self {
            equalise_clip: 3.0,
            max_features: 3000,
            fast_threshold: 10,
            levels: 3,
            level_scale: 1.5,
            cell_px: 16,
            max_hamming: 64,
            ratio: 0.8,
            pair_window: 3,
            epipolar_px: 2.0,
            min_views: 2,
            max_reprojection_px: 2.0,
            min_parallax_deg: 1.0,
            max_depth_m: 80.0,
        }
    }
}

impl VisualConfig {
    /// Checks ranges.
    pub fn validate(&self) -> Result<(), String> {
        let ok = self.max_features > 0
            && (1..=8).contains(&self.levels)
            && self.level_scale > 1.0
            && self.level_scale <= 2.0
            && self.cell_px >= 4
            && self.max_hamming <= 256
            && self.ratio > 0.0
            && self.ratio <= 1.0
            && self.pair_window >= 1
            && self.epipolar_px > 0.0
            && self.min_views >= 2
            && self.max_reprojection_px > 0.0
            && self.min_parallax_deg >= 0.0
            && self.max_depth_m > 0.0
            && (self.equalise_clip == 0.0 || self.equalise_clip >= 1.0);
        if ok {
            Ok(())
        } else {
            Err(format!(
                "visual: need equalise_clip 0 or ≥ 1, max_features > 0, levels 1–8, level_scale in (1, 2], cell_px ≥ 4, max_hamming ≤ 256, \
                 ratio in (0, 1], pair_window ≥ 1, min_views ≥ 2 and positive pixel and depth limits (got {self:?})"
            ))
        }
    }
}

/// A keypoint with its descriptor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Feature {
    /// Column, px of the full image (pixel centres at integers).
    pub x: f32,
    /// Row, px.
    pub y: f32,
    /// Pyramid level it was found on.
    pub level: u8,
    /// Grey level there after equalisation.
    pub grey: u8,
    /// BRIEF-256.
    pub descriptor: Descriptor,
}

/// Hamming distance of two descriptors.
pub fn hamming(a: &Descriptor, b: &Descriptor) -> u32 {
    let mut d = 0;
    for k in 0..4 {
        let word = |x: &Descriptor| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&x[8 * k..8 * k + 8]);
            u64::from_le_bytes(w)
        };
        d += (word(a) ^ word(b)).count_ones();
    }
    d
}

/// Half-width of the box whose mean a BRIEF test reads (5 × 5 boxes).
const BOX_HALF: i32 = 2;
/// Farthest test point from the keypoint, px (boxes stay inside a 31 × 31 patch).
const TEST_REACH: i32 = 13;

/// The descriptor's 256 test pairs `[dx0, dy0, dx1, dy1]` around the keypoint: Gaussian
/// (σ = 6.6 px, Calonder et al.'s choice for a 31 px patch) from ChaCha8 seeded with
/// [`BRIEF_SEED`], each coordinate within ±[`TEST_REACH`].
fn test_pairs() -> &'static [[i32; 4]] {
    static PAIRS: OnceLock<Vec<[i32; 4]>> = OnceLock::new();
    PAIRS.get_or_init(|| {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(BRIEF_SEED);
        let normal = rand_distr::Normal::new(0.0f64, 6.6).unwrap_or_else(|_| unreachable!("valid σ"));
        let mut draw = || loop {
            let v = normal.sample(&mut rng).round() as i32;
            if v.abs() <= TEST_REACH {
                return v;
            }
        };
        (0..256).map(|_| [draw(), draw(), draw(), draw()]).collect()
    })
}

/// BRIEF-256 at `(x, y)` of the image whose integral image is `ii`: bit k (byte k / 8, bit
/// k % 8) is set when the 5 × 5 box at test point 0 of pair k is darker than the box at test
/// point 1. The caller keeps `(x, y)` at least [`BORDER_PX`] inside the image.
fn brief(ii: &image::ImageBuffer<image::Luma<u32>, Vec<u32>>, x: u32, y: u32) -> Descriptor {
    let sum = |dx: i32, dy: i32| {
        let (cx, cy) = ((x as i32 + dx) as u32, (y as i32 + dy) as u32);
        let b = BOX_HALF as u32;
        imageproc::integral_image::sum_image_pixels(ii, cx - b, cy - b, cx + b, cy + b)[0]
    };
    let mut d = [0u8; 32];
    for (k, t) in test_pairs().iter().enumerate() {
        if sum(t[0], t[1]) < sum(t[2], t[3]) {
            d[k / 8] |= 1 << (k % 8);
        }
    }
    d
}

/// Global histogram equalisation with the histogram clipped at `clip` times its mean bin (the
/// clipped excess spread evenly over all bins), so the grey-level mapping's slope stays below
/// about `clip`.
pub fn equalise(image: &GrayImage, clip: f64) -> GrayImage {
    let mut hist = [0f64; 256];
    for p in image.pixels() {
        hist[p[0] as usize] += 1.0;
    }
    let n: f64 = hist.iter().sum();
    let limit = clip * n / 256.0;
    let excess: f64 = hist.iter().map(|h| (h - limit).max(0.0)).sum();
    let mut lut = [0u8; 256];
    let mut acc = 0.0;
    for (v, h) in hist.iter().enumerate() {
        let c = h.min(limit) + excess / 256.0;
        // Mid-bin CDF: a constant image stays mid-grey rather than white.
        lut[v] = ((acc + 0.5 * c) / n * 255.0).round().clamp(0.0, 255.0) as u8;
        acc += c;
    }
    let mut out = image.clone();
    for p in out.pixels_mut() {
        p[0] = lut[p[0] as usize];
    }
    out
}

/// Keypoints closer than this to a level's border have no full BRIEF patch.
const BORDER_PX: u32 = (TEST_REACH + BOX_HALF + 2) as u32;

/// Features of one grey image: FAST-9 on each pyramid level, the strongest per grid cell,
/// about `max_features` in all (shared among levels by their area; each level's share is
/// rounded up), BRIEF-256 each. Deterministic: ties are broken by position.
pub fn extract(image: &GrayImage, cfg: &VisualConfig) -> Vec<Feature> {
    let equalised;
    let image = if cfg.equalise_clip > 0.0 {
        equalised = equalise(image, cfg.equalise_clip);
        &equalised
    } else {
        image
    };
    let (w0, h0) = image.dimensions();
    let areas: Vec<f64> = (0..cfg.levels).map(|l| cfg.level_scale.powi(-2 * l as i32)).collect();
    let total_area: f64 = areas.iter().sum();
    let mut out = Vec::new();
    for (level, area) in areas.iter().enumerate() {
        let s = cfg.level_scale.powi(level as i32);
        let (w, h) = (((w0 as f64) / s).round() as u32, ((h0 as f64) / s).round() as u32);
        if w <= 2 * BORDER_PX + 1 || h <= 2 * BORDER_PX + 1 {
            break;
        }
        let img = if level == 0 {
            image.clone()
        } else {
            image::imageops::resize(image, w, h, image::imageops::FilterType::Triangle)
        };
        let mut best: HashMap<(u32, u32), imageproc::corners::Corner> = HashMap::new();
        for c in imageproc::corners::corners_fast9(&img, cfg.fast_threshold) {
            if c.x < BORDER_PX || c.y < BORDER_PX || c.x + BORDER_PX >= w || c.y + BORDER_PX >= h {
                continue;
            }
            let cell = (c.x / cfg.cell_px, c.y / cfg.cell_px);
            let e = best.entry(cell).or_insert(c);
            if (c.score, std::cmp::Reverse((c.y, c.x))) > (e.score, std::cmp::Reverse((e.y, e.x))) {
                *e = c;
            }
        }
        let mut corners: Vec<_> = best.into_values().collect();
        corners.sort_by(|a, b| b.score.total_cmp(&a.score).then((a.y, a.x).cmp(&(b.y, b.x))));
        let quota = ((cfg.max_features as f64) * area / total_area).ceil() as usize;
        corners.truncate(quota);
        let ii: image::ImageBuffer<image::Luma<u32>, Vec<u32>> =
            imageproc::integral_image::integral_image(&img);
        let (sx, sy) = (w0 as f64 / w as f64, h0 as f64 / h as f64);
        for c in &corners {
            let descriptor = brief(&ii, c.x, c.y);
            out.push(Feature {
                x: ((c.x as f64 + 0.5) * sx - 0.5) as f32,
                y: ((c.y as f64 + 0.5) * sy - 0.5) as f32,
                level: level as u8,
                grey: img.get_pixel(c.x, c.y)[0],
                descriptor,
            });
        }
    }
    out
}

/// One image of the mapping drive.
#[derive(Debug, Clone)]
pub struct MapFrame {
    /// Image path as kapture records it (relative, e.g. `camera0/000012.png`).
    pub name: String,
    /// Exposure stamp, ns.
    pub stamp_ns: i64,
    /// `camera_from_world` (map frame: local to the origin).
    pub camera_from_world: Isometry3<f64>,
    /// Its features.
    pub features: Vec<Feature>,
}

/// A triangulated point.
#[derive(Debug, Clone, PartialEq)]
pub struct MapPoint {
    /// Position, map frame, m.
    pub xyz: [f64; 3],
    /// Grey level (equalised) at its observations, mean.
    pub grey: u8,
    /// (frame index, feature index in that frame).
    pub observations: Vec<(usize, usize)>,
}

/// The visual feature layer.
#[derive(Debug, Clone)]
pub struct VisualMap {
    /// CRS and origin of the map frame.
    pub origin: GeoOrigin,
    /// Camera 0's intrinsics.
    pub intrinsics: CameraIntrinsics,
    /// The images with only the features that are observations of a point.
    pub frames: Vec<MapFrame>,
    /// Points; observations index `frames[..].features`.
    pub points: Vec<MapPoint>,
    /// The settings it was built with (their extraction part is what queries must use).
    pub extract: VisualConfig,
}

/// What building a layer found.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct VisualStats {
    /// Images.
    pub images: usize,
    /// Features extracted, mean per image.
    pub features_per_image: f64,
    /// Pairwise matches that passed the epipolar, mutual and ratio tests.
    pub matches: usize,
    /// Tracks of at least two images.
    pub tracks: usize,
    /// Points kept.
    pub points: usize,
    /// Mean images per kept point.
    pub mean_track_length: f64,
    /// RMS reprojection error of the kept observations, px.
    pub rms_reprojection_px: f64,
}

/// Undistorted normalised coordinates of each feature.
fn normalised(f: &[Feature], k: &CameraIntrinsics) -> Vec<[f64; 2]> {
    f.iter().map(|p| k.undistort(p.x as f64, p.y as f64)).collect()
}

/// Matches of image `a` into image `b` (`b_from_a` relative pose): (index in a, index in b).
fn match_pair(
    fa: &[Feature],
    na: &[[f64; 2]],
    fb: &[Feature],
    nb: &[[f64; 2]],
    b_from_a: &Isometry3<f64>,
    focal_px: f64,
    cfg: &VisualConfig,
) -> Vec<(usize, usize)> {
    let e = hdmap_core::pose::skew(&b_from_a.translation.vector)
        * b_from_a.rotation.to_rotation_matrix().matrix();
    // Positions on pyramid level l are quantised to level_scale^l px.
    let tol = |a: &Feature, b: &Feature| {
        cfg.epipolar_px * cfg.level_scale.powi(a.level.max(b.level) as i32) / focal_px
    };
    // For each feature, the best and second-best candidate on its epipolar line, both ways.
    let best = |from: &[Feature], nf: &[[f64; 2]], to: &[Feature], nt: &[[f64; 2]], forward: bool| {
        from.par_iter()
            .zip(nf)
            .map(|(f, x)| {
                let xa = Vector3::new(x[0], x[1], 1.0);
                let line = if forward { e * xa } else { e.transpose() * xa };
                let norm = line.x.hypot(line.y);
                let (mut d1, mut d2, mut i1) = (u32::MAX, u32::MAX, usize::MAX);
                for (j, (g, y)) in to.iter().zip(nt).enumerate() {
                    if (line.x * y[0] + line.y * y[1] + line.z).abs() > tol(f, g) * norm {
                        continue;
                    }
                    let d = hamming(&f.descriptor, &g.descriptor);
                    if d < d1 {
                        (d2, d1, i1) = (d1, d, j);
                    } else if d < d2 {
                        d2 = d;
                    }
                }
                let unique = d2 == u32::MAX || (d1 as f64) < cfg.ratio * d2 as f64;
                if i1 != usize::MAX && d1 <= cfg.max_hamming && unique { Some(i1) } else { None }
            })
            .collect::<Vec<_>>()
    };
    let ab = best(fa, na, fb, nb, true);
    let ba = best(fb, nb, fa, na, false);
    ab.iter().enumerate().filter_map(|(i, j)| j.filter(|&j| ba[j] == Some(i)).map(|j| (i, j))).collect()
}

fn find(parent: &mut [usize], mut x: usize) -> usize {
    while parent[x] != x {
        parent[x] = parent[parent[x]];
        x = parent[x];
    }
    x
}

/// A point seen from cameras `views` (`camera_from_world`, normalised observation), or `None`
/// where the rays are near parallel. Midpoint start, then Gauss–Newton on the normalised
/// reprojection error.
pub fn triangulate(views: &[(Isometry3<f64>, [f64; 2])]) -> Option<Vector3<f64>> {
    let mut a = Matrix3::zeros();
    let mut b = Vector3::zeros();
    for (c_w, x) in views {
        let w_c = c_w.inverse();
        let d = (w_c.rotation * Vector3::new(x[0], x[1], 1.0)).normalize();
        let p = Matrix3::identity() - d * d.transpose();
        a += p;
        b += p * w_c.translation.vector;
    }
    let mut xw = a.try_inverse()? * b;
    for _ in 0..5 {
        let mut h = Matrix3::zeros();
        let mut g = Vector3::zeros();
        for (c_w, x) in views {
            let pc = c_w * Point3::from(xw);
            if pc.z <= 1e-6 {
                return None;
            }
            let r = [pc.x / pc.z - x[0], pc.y / pc.z - x[1]];
            let m = c_w.rotation.to_rotation_matrix();
            let iz = 1.0 / pc.z;
            for (k, rk) in r.iter().enumerate() {
                let row = (m.matrix().row(k) - m.matrix().row(2) * (pc.coords[k] * iz)) * iz;
                let j = row.transpose();
                h += j * j.transpose();
                g += j * *rk;
            }
        }
        let step = h.try_inverse()? * g;
        xw -= step;
        if step.norm() < 1e-9 {
            break;
        }
    }
    Some(xw)
}

/// Builds the layer from a drive's images with their features and poses. Frames must be in
/// drive order.
pub fn build_visual(
    frames: Vec<MapFrame>,
    intrinsics: &CameraIntrinsics,
    origin: &GeoOrigin,
    cfg: &VisualConfig,
) -> Result<(VisualMap, VisualStats), FeaturesError> {
    cfg.validate().map_err(FeaturesError::Config)?;
    if frames.len() < cfg.min_views {
        return Err(FeaturesError::Input {
            what: "visual layer".into(),
            detail: format!("{} images; at least min_views = {} are needed", frames.len(), cfg.min_views),
        });
    }
    let norm: Vec<Vec<[f64; 2]>> = frames.par_iter().map(|f| normalised(&f.features, intrinsics)).collect();
    let offsets: Vec<usize> = frames
        .iter()
        .scan(0, |acc, f| {
            let o = *acc;
            *acc += f.features.len();
            Some(o)
        })
        .collect();
    let total: usize = frames.iter().map(|f| f.features.len()).sum();
    let focal = intrinsics.fx.min(intrinsics.fy);
    let pairs: Vec<(usize, usize)> = (0..frames.len())
        .flat_map(|i| (i + 1..(i + 1 + cfg.pair_window).min(frames.len())).map(move |j| (i, j)))
        .collect();
    let mut parent: Vec<usize> = (0..total).collect();
    let mut n_matches = 0;
    for &(i, j) in &pairs {
        let b_from_a = frames[j].camera_from_world * frames[i].camera_from_world.inverse();
        if b_from_a.translation.vector.norm() < 1e-3 {
            continue; // standing still: no epipolar geometry, and nothing to triangulate
        }
        let m =
            match_pair(&frames[i].features, &norm[i], &frames[j].features, &norm[j], &b_from_a, focal, cfg);
        n_matches += m.len();
        for (a, b) in m {
            let (ra, rb) = (find(&mut parent, offsets[i] + a), find(&mut parent, offsets[j] + b));
            if ra != rb {
                parent[ra.max(rb)] = ra.min(rb);
            }
        }
    }
    // Tracks: members grouped by root, in global order (deterministic).
    let frame_of = |g: usize| offsets.partition_point(|&o| o <= g) - 1;
    let mut groups: HashMap<usize, Vec<usize>> = HashMap::new();
    for g in 0..total {
        let r = find(&mut parent, g);
        groups.entry(r).or_default().push(g);
    }
    let mut tracks: Vec<Vec<(usize, usize)>> = groups
        .into_values()
        .filter(|v| v.len() >= 2)
        .map(|v| v.into_iter().map(|g| (frame_of(g), g - offsets[frame_of(g)])).collect())
        .collect();
    tracks.sort();
    let n_tracks = tracks.len();
    let min_cos = cfg.min_parallax_deg.to_radians().cos();
    let points: Vec<(MapPoint, f64)> = tracks
        .par_iter()
        .filter_map(|t| {
            let mut seen = std::collections::HashSet::new();
            if !t.iter().all(|(f, _)| seen.insert(*f)) || t.len() < cfg.min_views {
                return None;
            }
            let mut obs = t.clone();
            for _ in 0..2 {
                let views: Vec<_> =
                    obs.iter().map(|&(f, k)| (frames[f].camera_from_world, norm[f][k])).collect();
                let x = triangulate(&views)?;
                // Reprojection error in units of the observation's level (its quantisation).
                let reproj = |&(f, k): &(usize, usize)| -> Option<(f64, f64)> {
                    let pc = frames[f].camera_from_world * Point3::from(x);
                    if pc.z < 0.5 || pc.coords.norm() > cfg.max_depth_m {
                        return None;
                    }
                    let [u, v] = intrinsics.project(&pc.coords)?;
                    let ft = &frames[f].features[k];
                    let e = (u - ft.x as f64).hypot(v - ft.y as f64);
                    Some((e, e / cfg.level_scale.powi(ft.level as i32)))
                };
                let errs: Vec<Option<(f64, f64)>> = obs.iter().map(reproj).collect();
                let good: Vec<(usize, usize)> = obs
                    .iter()
                    .zip(&errs)
                    .filter(|(_, e)| e.is_some_and(|e| e.1 <= cfg.max_reprojection_px))
                    .map(|(o, _)| *o)
                    .collect();
                if good.len() < cfg.min_views {
                    return None;
                }
                if good.len() < obs.len() {
                    obs = good;
                    continue;
                }
                // Parallax: the widest angle between two rays.
                let rays: Vec<Vector3<f64>> = obs
                    .iter()
                    .map(|&(f, _)| (x - frames[f].camera_from_world.inverse().translation.vector).normalize())
                    .collect();
                let widest = rays
                    .iter()
                    .enumerate()
                    .flat_map(|(i, a)| rays[i + 1..].iter().map(move |b| a.dot(b)))
                    .fold(1.0f64, f64::min);
                if widest > min_cos {
                    return None;
                }
                let sq: f64 = errs.iter().flatten().map(|e| e.0 * e.0).sum();
                let g = obs.iter().map(|&(f, k)| frames[f].features[k].grey as f64);
                let grey_mean = g.sum::<f64>() / obs.len() as f64;
                return Some((
                    MapPoint { xyz: [x.x, x.y, x.z], grey: grey_mean.round() as u8, observations: obs },
                    sq,
                ));
            }
            None
        })
        .collect();
    // Keep only observed features, renumbered per frame.
    let mut used: Vec<Vec<usize>> = vec![Vec::new(); frames.len()];
    for (p, _) in &points {
        for &(f, k) in &p.observations {
            used[f].push(k);
        }
    }
    let mut renumber: Vec<HashMap<usize, usize>> = vec![HashMap::new(); frames.len()];
    for (f, u) in used.iter_mut().enumerate() {
        u.sort_unstable();
        for (new, &old) in u.iter().enumerate() {
            renumber[f].insert(old, new);
        }
    }
    let n_obs: usize = points.iter().map(|(p, _)| p.observations.len()).sum();
    let stats = VisualStats {
        images: frames.len(),
        features_per_image: total as f64 / frames.len() as f64,
        matches: n_matches,
        tracks: n_tracks,
        points: points.len(),
        mean_track_length: n_obs as f64 / points.len().max(1) as f64,
        rms_reprojection_px: (points.iter().map(|(_, s)| s).sum::<f64>() / n_obs.max(1) as f64).sqrt(),
    };
    let points: Vec<MapPoint> = points
        .into_iter()
        .map(|(mut p, _)| {
            for o in &mut p.observations {
                o.1 = renumber[o.0][&o.1];
            }
            p
        })
        .collect();
    // Images without an observed feature (a stop, a blank view) are left out of the layer.
    let mut new_index = vec![usize::MAX; frames.len()];
    let frames: Vec<MapFrame> = frames
        .into_iter()
        .zip(&used)
        .enumerate()
        .filter(|(_, (_, u))| !u.is_empty())
        .enumerate()
        .map(|(new, (old, (mut f, u)))| {
            new_index[old] = new;
            f.features = u.iter().map(|&k| f.features[k]).collect();
            f
        })
        .collect();
    let points = points
        .into_iter()
        .map(|mut p| {
            for o in &mut p.observations {
                o.0 = new_index[o.0];
            }
            p
        })
        .collect();
    Ok((
        VisualMap { origin: origin.clone(), intrinsics: *intrinsics, frames, points, extract: cfg.clone() },
        stats,
    ))
}

/// `map_from_camera0` (map frame: local to `origin`) at a camera stamp (camera clock), from a
/// trajectory of camera 0 itself, of LiDAR 0 (the register stage's output, stamped on the
/// LiDAR's clock), or of the vehicle or GNSS antenna, through the rig. Clock offsets follow the
/// rig (`true = stamp − offset`); trajectories of other sources than a LiDAR are in true time
/// (INS solutions, ground truth, `hdmap localize --camera`'s output).
pub fn camera_pose_at(
    traj: &Trajectory,
    rig: &Rig,
    origin: &GeoOrigin,
    camera_stamp_ns: i64,
) -> Result<Isometry3<f64>, CoreError> {
    let source_from_camera = rig.transform(traj.source, FrameId::Camera(0))?;
    camera_pose_with(traj, &source_from_camera, rig, origin, camera_stamp_ns)
}

/// [`camera_pose_at`] with the rig's `source_from_camera0` already looked up.
fn camera_pose_with(
    traj: &Trajectory,
    source_from_camera: &Isometry3<f64>,
    rig: &Rig,
    origin: &GeoOrigin,
    camera_stamp_ns: i64,
) -> Result<Isometry3<f64>, CoreError> {
    let t_true = camera_stamp_ns - rig.time_offset_ns(FrameId::Camera(0));
    let stamp = match traj.source {
        FrameId::Lidar(_) => t_true + rig.time_offset_ns(traj.source),
        _ => t_true,
    };
    let world_from_camera = traj.interpolate(stamp)? * *source_from_camera;
    let shift = match (&traj.origin, traj.origin_relative) {
        (Some(o), true) => Vector3::from(o.origin) - Vector3::from(origin.origin),
        _ => -Vector3::from(origin.origin),
    };
    Ok(Translation3::from(shift) * world_from_camera)
}

/// Builds the layer from a drive's camera folder (`hdmap_io::camera_records`) and a
/// trajectory ([`camera_pose_at`]); images outside the trajectory are left out. Returns the
/// layer, its statistics and the number of images left out.
pub fn build_visual_from_folder(
    camera_dir: &std::path::Path,
    traj: &Trajectory,
    rig: &Rig,
    origin: &GeoOrigin,
    cfg: &VisualConfig,
) -> Result<(VisualMap, VisualStats, usize), FeaturesError> {
    cfg.validate().map_err(FeaturesError::Config)?;
    if let Some(o) = &traj.origin
        && (o.epsg != origin.epsg || o.vertical_datum != origin.vertical_datum)
    {
        return Err(FeaturesError::Input {
            what: camera_dir.display().to_string(),
            detail: format!(
                "the trajectory is in EPSG:{} ({}), the map in EPSG:{} ({})",
                o.epsg, o.vertical_datum, origin.epsg, origin.vertical_datum
            ),
        });
    }
    let input = |e: String| FeaturesError::Input { what: camera_dir.display().to_string(), detail: e };
    let (k, records) =
        hdmap_io::camera_records::read_camera_folder(camera_dir).map_err(|e| input(e.to_string()))?;
    let folder =
        camera_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "camera".into());
    let source_from_camera = rig
        .transform(traj.source, FrameId::Camera(0))
        .map_err(|e| input(format!("the rig has no {} ← camera0 transform: {e}", traj.source)))?;
    let mut posed = Vec::with_capacity(records.len());
    for r in &records {
        match camera_pose_with(traj, &source_from_camera, rig, origin, r.stamp_ns) {
            Ok(p) => posed.push((r, p)),
            Err(CoreError::OutsideTrajectory { .. }) => {}
            Err(e) => return Err(input(format!("{}: {e}", r.path.display()))),
        }
    }
    let skipped = records.len() - posed.len();
    let frames: Vec<MapFrame> = posed
        .par_iter()
        .map(|(r, map_from_camera)| {
            let img = hdmap_io::camera_records::read_grey(r, &k).map_err(|e| input(e.to_string()))?;
            Ok(MapFrame {
                name: format!("{folder}/{}", r.name),
                stamp_ns: r.stamp_ns,
                camera_from_world: map_from_camera.inverse(),
                features: extract(&img, cfg),
            })
        })
        .collect::<Result<_, _>>()?;
    let (map, stats) = build_visual(frames, &k, origin, cfg)?;
    Ok((map, stats, skipped))
}

/// The layer's own metadata (`hdmap_visual.json`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct VisualMetadata {
    /// EPSG code of the map frame's CRS.
    pub epsg: u32,
    /// Map origin (CRS units); kapture coordinates are relative to it.
    pub origin: [f64; 3],
    /// Vertical datum of heights.
    pub vertical_datum: String,
    /// kapture keypoint type.
    pub keypoints_type: String,
    /// kapture descriptor type.
    pub descriptor_type: String,
    /// What the descriptor is.
    pub descriptor: String,
    /// Images.
    pub images: usize,
    /// Points.
    pub points: usize,
    /// The settings the layer was built with: queries extract their features with these.
    pub settings: VisualConfig,
}

/// kapture's camera model and parameters for our intrinsics.
fn camera_params(k: &CameraIntrinsics) -> Vec<String> {
    let mut p = vec![k.width as f64, k.height as f64, k.fx, k.fy, k.cx, k.cy];
    let model = match k.distortion {
        Distortion::None => "PINHOLE",
        Distortion::BrownConrady { k1, k2, p1, p2, k3: 0.0 } => {
            p.extend([k1, k2, p1, p2]);
            "OPENCV"
        }
        Distortion::BrownConrady { k1, k2, p1, p2, k3 } => {
            p.extend([k1, k2, p1, p2, k3, 0.0, 0.0, 0.0]);
            "FULL_OPENCV"
        }
        Distortion::KannalaBrandt { k1, k2, k3, k4 } => {
            p.extend([k1, k2, k3, k4]);
            "OPENCV_FISHEYE"
        }
    };
    std::iter::once(model.to_string()).chain(p.iter().map(|v| format!("{v}"))).collect()
}

impl VisualMap {
    /// The layer as kapture (sensors, trajectories, records, keypoints, descriptors, points,
    /// observations) and its metadata file's bytes.
    pub fn to_kapture(&self) -> (Kapture, Vec<u8>) {
        let mut k = Kapture {
            sensors: vec![Sensor {
                id: CAMERA_ID.into(),
                name: "camera 0".into(),
                kind: "camera".into(),
                params: camera_params(&self.intrinsics),
            }],
            ..Kapture::default()
        };
        let mut kp = FeatureFiles {
            dtype: "float32".into(),
            dsize: 2,
            keypoints_type: None,
            metric_type: None,
            files: Default::default(),
        };
        let mut desc = FeatureFiles {
            dtype: "uint8".into(),
            dsize: 32,
            keypoints_type: Some(KEYPOINTS_TYPE.into()),
            metric_type: Some("hamming".into()),
            files: Default::default(),
        };
        for f in &self.frames {
            k.trajectories.push(PoseRecord {
                timestamp: f.stamp_ns,
                id: CAMERA_ID.into(),
                sensor_id: String::new(),
                pose: f.camera_from_world,
            });
            k.records_camera.push(Record {
                timestamp: f.stamp_ns,
                device_id: CAMERA_ID.into(),
                path: f.name.clone(),
            });
            let xy: Vec<u8> = f.features.iter().flat_map(|p| [p.x, p.y]).flat_map(f32::to_le_bytes).collect();
            let d: Vec<u8> = f.features.iter().flat_map(|p| p.descriptor).collect();
            kp.files.insert(f.name.clone(), xy);
            desc.files.insert(f.name.clone(), d);
        }
        k.keypoints.insert(KEYPOINTS_TYPE.into(), kp);
        k.descriptors.insert(DESCRIPTOR_TYPE.into(), desc);
        for (i, p) in self.points.iter().enumerate() {
            let g = p.grey as f64;
            k.points3d.push([p.xyz[0], p.xyz[1], p.xyz[2], g, g, g]);
            k.observations.push(Observation {
                point3d_id: i,
                keypoints_type: KEYPOINTS_TYPE.into(),
                seen_in: p
                    .observations
                    .iter()
                    .map(|&(f, j)| (self.frames[f].name.clone(), j as u32))
                    .collect(),
            });
        }
        let meta = VisualMetadata {
            epsg: self.origin.epsg,
            origin: self.origin.origin,
            vertical_datum: self.origin.vertical_datum.to_string(),
            keypoints_type: KEYPOINTS_TYPE.into(),
            descriptor_type: DESCRIPTOR_TYPE.into(),
            descriptor: format!(
                "BRIEF-256 (box-averaged tests, Gaussian pairs from ChaCha8 seed {BRIEF_SEED:#x}) on FAST-9 corners, upright"
            ),
            images: self.frames.len(),
            points: self.points.len(),
            settings: self.extract.clone(),
        };
        let bytes = serde_json::to_vec_pretty(&meta).unwrap_or_default();
        (k, bytes)
    }
}

/// Writes the layer as a kapture folder (atomically, with `hdmap_visual.json`).
pub fn write_visual(dir: &std::path::Path, map: &VisualMap) -> Result<(), hdmap_io::IoError> {
    let (k, meta) = map.to_kapture();
    hdmap_io::kapture::write_kapture_with(dir, &k, &[(METADATA_FILE, meta.as_slice())])
}

/// A visual layer as the localizer uses it: points with every descriptor they were seen with.
#[derive(Debug, Clone)]
pub struct PointDescriptors {
    /// CRS and origin of the map frame.
    pub origin: GeoOrigin,
    /// Point positions, map frame.
    pub xyz: Vec<[f64; 3]>,
    /// (point index, descriptor) for every observation.
    pub descriptors: Vec<(u32, Descriptor)>,
    /// The layer's settings; query features must be extracted with them.
    pub settings: VisualConfig,
}

/// Reads a layer written by [`write_visual`] (any kapture with `hdmap_visual.json` and our
/// feature types).
pub fn read_visual(dir: &std::path::Path) -> Result<PointDescriptors, FeaturesError> {
    let bad = |detail: String| FeaturesError::Input { what: dir.display().to_string(), detail };
    let meta_path = dir.join(METADATA_FILE);
    let text = std::fs::read_to_string(&meta_path)
        .map_err(|e| bad(format!("{METADATA_FILE}: {e} (not an hdmap visual layer?)")))?;
    let meta: VisualMetadata =
        serde_json::from_str(&text).map_err(|e| bad(format!("{METADATA_FILE}: {e}")))?;
    if meta.descriptor_type != DESCRIPTOR_TYPE || meta.keypoints_type != KEYPOINTS_TYPE {
        return Err(bad(format!(
            "features {} / {}; this build reads {KEYPOINTS_TYPE} / {DESCRIPTOR_TYPE}",
            meta.keypoints_type, meta.descriptor_type
        )));
    }
    let datum =
        meta.vertical_datum.parse().map_err(|e| bad(format!("{METADATA_FILE}: vertical datum: {e}")))?;
    let origin = GeoOrigin::new(meta.epsg, meta.origin, datum).map_err(|e| bad(e.to_string()))?;
    let k = hdmap_io::kapture::read_kapture(dir).map_err(|e| bad(e.to_string()))?;
    let desc =
        k.descriptors.get(DESCRIPTOR_TYPE).ok_or_else(|| bad(format!("no {DESCRIPTOR_TYPE} descriptors")))?;
    if desc.dtype != "uint8" || desc.dsize != 32 {
        return Err(bad(format!(
            "{DESCRIPTOR_TYPE}: dtype {} × {}, expected uint8 × 32",
            desc.dtype, desc.dsize
        )));
    }
    let xyz: Vec<[f64; 3]> = k.points3d.iter().map(|p| [p[0], p[1], p[2]]).collect();
    if xyz.iter().flatten().any(|v| !v.is_finite()) {
        return Err(bad("points3d.txt holds a non-finite coordinate".into()));
    }
    let mut descriptors = Vec::new();
    for o in &k.observations {
        if o.keypoints_type != KEYPOINTS_TYPE {
            continue;
        }
        if o.point3d_id >= xyz.len() {
            return Err(bad(format!("observation of point {} of {}", o.point3d_id, xyz.len())));
        }
        for (img, idx) in &o.seen_in {
            let bytes = desc.files.get(img).ok_or_else(|| bad(format!("no descriptors for {img}")))?;
            let at = *idx as usize * 32;
            let d: Descriptor = bytes
                .get(at..at + 32)
                .and_then(|s| s.try_into().ok())
                .ok_or_else(|| bad(format!("{img}: descriptor {idx} beyond the file")))?;
            descriptors.push((o.point3d_id as u32, d));
        }
    }
    meta.settings.validate().map_err(|e| bad(format!("{METADATA_FILE}: settings: {e}")))?;
    Ok(PointDescriptors { origin, xyz, descriptors, settings: meta.settings })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdmap_core::nalgebra::UnitQuaternion;
    use rand::SeedableRng;

    #[test]
    fn hamming_counts_differing_bits() {
        let a = [0u8; 32];
        let mut b = [0u8; 32];
        b[0] = 0b1011;
        b[31] = 0x80;
        assert_eq!(hamming(&a, &b), 4);
        assert_eq!(hamming(&b, &b), 0);
        assert_eq!(hamming(&a, &[0xff; 32]), 256);
    }

    /// A LiDAR trajectory on the LiDAR's clock (offset 2.5 ms) and a camera on its own clock
    /// (offset 1 ms) give the camera's true pose: the offsets' signs and the rig composition.
    #[test]
    fn camera_poses_follow_the_rig_and_the_clocks() {
        use hdmap_core::{Extrinsic, StampedPose, VerticalDatum};
        let (off_l, off_c) = (2_500_000i64, 1_000_000i64);
        let vehicle_from_lidar = Isometry3::from_parts(
            Translation3::new(1.3, 0.0, 1.9),
            UnitQuaternion::from_euler_angles(0.01, -0.02, 0.03),
        );
        let vehicle_from_camera = Isometry3::from_parts(
            Translation3::new(1.8, 0.1, 1.5),
            UnitQuaternion::from_euler_angles(-1.57, 0.0, -1.57),
        );
        let ext = |source, t, off| Extrinsic {
            target: FrameId::Vehicle,
            source,
            target_from_source: t,
            covariance: None,
            time_offset_ns: off,
        };
        let rig = Rig {
            extrinsics: vec![
                ext(FrameId::Lidar(0), vehicle_from_lidar, off_l),
                ext(FrameId::Camera(0), vehicle_from_camera, off_c),
            ],
        };
        let origin = GeoOrigin::new(5186, [1000.0, 2000.0, 30.0], VerticalDatum::Kngeoid18).expect("origin");
        // Absolute CRS coordinates, 10 m/s with a gentle turn.
        let world_from_vehicle = |t_ns: i64| {
            let t = t_ns as f64 * 1e-9;
            Isometry3::from_parts(
                Translation3::new(1000.0 + 10.0 * t, 2000.0 + 0.5 * t * t, 30.0),
                UnitQuaternion::from_euler_angles(0.0, 0.0, 0.1 * t),
            )
        };
        let poses: Vec<StampedPose> = (0..=2000)
            .map(|i| {
                let stamp_ns = i * 1_000_000;
                StampedPose {
                    stamp_ns,
                    target_from_source: world_from_vehicle(stamp_ns - off_l) * vehicle_from_lidar,
                }
            })
            .collect();
        let mut traj = Trajectory::new(FrameId::World, FrameId::Lidar(0), poses).expect("trajectory");
        traj.origin = Some(origin.clone());
        for stamp in [400_000_000i64, 1_234_567_890] {
            let got = camera_pose_at(&traj, &rig, &origin, stamp).expect("pose");
            let truth = Translation3::new(-1000.0, -2000.0, -30.0)
                * world_from_vehicle(stamp - off_c)
                * vehicle_from_camera;
            let d = (got.translation.vector - truth.translation.vector).norm();
            let r = (got.rotation.inverse() * truth.rotation).angle();
            assert!(d < 1e-4 && r < 1e-6, "{stamp}: {d} m, {r} rad");
        }
    }

    #[test]
    fn brief_reads_box_means_at_the_test_pairs() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        let img = GrayImage::from_fn(64, 64, |_, _| image::Luma([rand::Rng::random(&mut rng)]));
        let ii: image::ImageBuffer<image::Luma<u32>, Vec<u32>> =
            imageproc::integral_image::integral_image(&img);
        let (x, y) = (30i32, 33i32);
        let d = brief(&ii, x as u32, y as u32);
        // Reference: the boxes summed pixel by pixel.
        let boxsum = |cx: i32, cy: i32| -> u32 {
            let mut s = 0;
            for yy in cy - BOX_HALF..=cy + BOX_HALF {
                for xx in cx - BOX_HALF..=cx + BOX_HALF {
                    s += img.get_pixel(xx as u32, yy as u32)[0] as u32;
                }
            }
            s
        };
        let mut ones = 0;
        for (k, t) in test_pairs().iter().enumerate() {
            let bit = boxsum(x + t[0], y + t[1]) < boxsum(x + t[2], y + t[3]);
            assert_eq!(d[k / 8] >> (k % 8) & 1 == 1, bit, "test {k}");
            ones += bit as usize;
        }
        // Random texture: about half the tests are set, and all 256 bits are in use.
        assert!((96..=160).contains(&ones), "{ones} of 256 bits set");
        assert!(test_pairs().iter().flatten().all(|v| v.abs() <= TEST_REACH));
    }

    #[test]
    fn triangulation_recovers_a_point_from_noise_free_views() {
        let truth = Vector3::new(3.0, -1.5, 22.0);
        let views: Vec<_> = (0..4)
            .map(|i| {
                let w_c = Isometry3::from_parts(
                    Translation3::new(0.0, 0.1 * i as f64, 2.5 * i as f64),
                    UnitQuaternion::from_euler_angles(0.01 * i as f64, -0.02, 0.015 * i as f64),
                );
                let c_w = w_c.inverse();
                let p = c_w * Point3::from(truth);
                (c_w, [p.x / p.z, p.y / p.z])
            })
            .collect();
        let x = triangulate(&views).expect("triangulated");
        assert!((x - truth).norm() < 1e-8, "{x:?}");
    }

    #[test]
    fn features_follow_a_shifted_image() {
        // Random 6 px blocks and the same image shifted by (7, 4) px: features found away from
        // the border reappear shifted, with (nearly) the same descriptor.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let blocks: Vec<u8> = (0..60 * 60).map(|_| rand::Rng::random(&mut rng)).collect();
        let img = GrayImage::from_fn(320, 240, |x, y| image::Luma([blocks[((y / 6) * 60 + x / 6) as usize]]));
        let shifted = GrayImage::from_fn(320, 240, |x, y| {
            let (sx, sy) = (x.saturating_sub(7), y.saturating_sub(4));
            *img.get_pixel(sx, sy)
        });
        let cfg = VisualConfig { levels: 1, cell_px: 4, ..VisualConfig::default() };
        let a = extract(&img, &cfg);
        let b = extract(&shifted, &cfg);
        assert!(a.len() > 50, "{} features", a.len());
        let mut found = 0;
        let inner: Vec<_> =
            a.iter().filter(|f| f.x > 40.0 && f.y > 40.0 && f.x < 260.0 && f.y < 180.0).collect();
        for f in &inner {
            if b.iter().any(|g| {
                (g.x - f.x - 7.0).abs() < 0.5
                    && (g.y - f.y - 4.0).abs() < 0.5
                    && hamming(&f.descriptor, &g.descriptor) <= 8
            }) {
                found += 1;
            }
        }
        assert!(found as f64 >= 0.5 * inner.len() as f64, "{found} of {}", inner.len());
    }
}
