//! An independent check of a camera–LiDAR extrinsic on road paint.
//!
//! Along each LiDAR beam on the road, a run of bright returns (≥ `paint_ratio` × the running
//! median of 61 returns of the beam) is a paint crossing. Its intensity-weighted centre is projected with the
//! extrinsic under test; the image is read along the beam's projected path, and the bright run
//! there (grey above the path's median by at least half the peak) gives the paint's centre in
//! the image. The offset between the two, taken along the beam's direction in the image, is
//! what the extrinsic leaves. Beams run about level in the image, so it is mostly a horizontal
//! offset: a yaw of δ moves every offset by about fx·δ, a sideways lever-arm error by fx·e/range.
//!
//! Pixel centres are at whole pixel coordinates (OpenCV's convention).
//!
//! It shares nothing with the targetless objective (no edge map, no mutual information), so it
//! can judge that objective's result, or a reference.

use hdmap_core::camera::CameraIntrinsics;
use hdmap_core::nalgebra::{Isometry3, Point3, Vector2, Vector3};
use image::GrayImage;
use serde::Serialize;

use crate::camlidar::Scan;

/// Settings of the paint check.
#[derive(Debug, Clone)]
pub struct PaintCheck {
    /// Returns used: range band, metres.
    pub min_range_m: f64,
    /// Far limit of the range band, metres.
    pub max_range_m: f64,
    /// Road returns lie at least this far below the sensor (LiDAR frame, z up), metres; a
    /// LiDAR mounted lower sees no road returns, and the check finds no crossings.
    pub below_sensor_m: f64,
    /// A paint return is this many times the running median of its beam (61 returns).
    pub paint_ratio: f64,
    /// Without a ring channel, returns of one beam are those whose sorted elevations follow
    /// each other by less than this, degrees.
    pub elevation_gap_deg: f64,
    /// Least rise of the paint above the path's median in the image, grey levels (0–255).
    pub min_contrast: f64,
}

impl Default for PaintCheck {
    fn default() -> Self {
        Self {
            min_range_m: 4.0,
            max_range_m: 35.0,
            below_sensor_m: 1.2,
            paint_ratio: 1.4,
            elevation_gap_deg: 0.04,
            min_contrast: 20.0,
        }
    }
}

/// One paint crossing of one beam.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct PaintCrossing {
    /// Range of the LiDAR paint centre, metres.
    pub range_m: f64,
    /// Where the LiDAR paint centre projects, px.
    pub pixel: [f64; 2],
    /// LiDAR centre minus image centre, along the beam's path in the image (in the direction of
    /// rising azimuth: leftwards for a forward-looking camera), px.
    pub offset_px: f64,
}

/// Median and quartiles of paint offsets.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct OffsetSummary {
    /// Crossings.
    pub n: usize,
    /// Median offset, px.
    pub median_px: f64,
    /// Lower quartile, px.
    pub q25_px: f64,
    /// Upper quartile, px.
    pub q75_px: f64,
}

impl OffsetSummary {
    /// The summary of the offsets, or `None` for fewer than three.
    pub fn of(offsets: impl IntoIterator<Item = f64>) -> Option<Self> {
        let mut v: Vec<f64> = offsets.into_iter().filter(|x| x.is_finite()).collect();
        if v.len() < 3 {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let q = |f: f64| v[((v.len() - 1) as f64 * f).round() as usize];
        Some(Self { n: v.len(), median_px: q(0.5), q25_px: q(0.25), q75_px: q(0.75) })
    }
}

/// Indices of each beam's road returns, sorted by azimuth.
fn beams(scan: &Scan, keep: &[usize], elevation_gap_deg: f64) -> Vec<Vec<usize>> {
    let p = &scan.points;
    let az = |i: usize| p[i][1].atan2(p[i][0]);
    let mut out: Vec<Vec<usize>> = match &scan.ring {
        Some(ring) => {
            let mut m: std::collections::BTreeMap<u16, Vec<usize>> = Default::default();
            for &i in keep {
                m.entry(ring[i]).or_default().push(i);
            }
            m.into_values().collect()
        }
        None => {
            let el = |i: usize| p[i][2].atan2(p[i][0].hypot(p[i][1])).to_degrees();
            let mut s = keep.to_vec();
            s.sort_by(|&a, &b| el(a).total_cmp(&el(b)));
            let mut out: Vec<Vec<usize>> = Vec::new();
            let mut last = f64::NEG_INFINITY;
            for i in s {
                if out.is_empty() || el(i) - last > elevation_gap_deg {
                    out.push(Vec::new());
                }
                last = el(i);
                out.last_mut().expect("pushed").push(i);
            }
            out
        }
    };
    for b in &mut out {
        b.sort_by(|&a, &c| az(a).total_cmp(&az(c)));
    }
    out
}

/// The paint crossings of `scan` seen in `gray` through `camera_from_lidar`. A scan without
/// intensities has none.
pub fn paint_crossings(
    scan: &Scan,
    gray: &GrayImage,
    camera: &CameraIntrinsics,
    camera_from_lidar: &Isometry3<f64>,
    check: &PaintCheck,
) -> Vec<PaintCrossing> {
    let Some(intensity) = scan.intensity.as_deref() else { return Vec::new() };
    let (w, h) = (gray.width() as f64, gray.height() as f64);
    let project = |p: Vector3<f64>| {
        camera
            .project(&(camera_from_lidar * Point3::from(p)).coords)
            .filter(|[u, v]| *u > 5.0 && *v > 5.0 && *u < w - 5.0 && *v < h - 5.0)
    };
    let pix = |i: usize| project(Vector3::from(scan.points[i]));
    let keep: Vec<usize> = (0..scan.points.len())
        .filter(|&i| {
            let r = Vector3::from(scan.points[i]).norm();
            r > check.min_range_m
                && r < check.max_range_m
                && scan.points[i][2] < -check.below_sensor_m
                && intensity[i].is_finite()
                && pix(i).is_some()
        })
        .collect();
    let grey_at = |p: Vector2<f64>| {
        let (x, y) = (p.x.round().clamp(0.0, w - 1.0) as u32, p.y.round().clamp(0.0, h - 1.0) as u32);
        gray.get_pixel(x, y)[0] as f64
    };
    let azimuth = |i: usize| scan.points[i][1].atan2(scan.points[i][0]);
    let mut out = Vec::new();
    for beam in beams(scan, &keep, check.elevation_gap_deg) {
        if beam.len() < 20 {
            continue;
        }
        let it: Vec<f64> = beam.iter().map(|&i| intensity[i] as f64).collect();
        let local: Vec<f64> = (0..it.len())
            .map(|k| {
                let mut win = it[k.saturating_sub(30)..(k + 31).min(it.len())].to_vec();
                let m = win.len() / 2;
                *win.select_nth_unstable_by(m, f64::total_cmp).1
            })
            .collect();
        let bright: Vec<bool> = (0..it.len()).map(|k| it[k] > check.paint_ratio * local[k]).collect();
        // The beam's azimuth step (its median), for telling a gap in the returns.
        let mut steps: Vec<f64> = beam.windows(2).map(|w| azimuth(w[1]) - azimuth(w[0])).collect();
        let m = steps.len() / 2;
        let step = *steps.select_nth_unstable_by(m, f64::total_cmp).1;
        let mut k = 1;
        while k + 1 < beam.len() {
            if !bright[k] {
                k += 1;
                continue;
            }
            let mut j = k;
            while j + 2 < beam.len() && bright[j + 1] {
                j += 1;
            }
            // Two or more bright returns, darker ones on both sides, no gap in the beam (the
            // span from one dark neighbour to the other is within two steps of its count).
            let gapless = azimuth(beam[j + 1]) - azimuth(beam[k - 1]) < step * (j - k + 4) as f64;
            if j > k && !bright[k - 1] && !bright[j + 1] && gapless {
                let wsum: f64 = (k..=j).map(|m| it[m] - local[m]).sum();
                let centre: Vector3<f64> = (k..=j)
                    .map(|m| Vector3::from(scan.points[beam[m]]) * (it[m] - local[m]))
                    .sum::<Vector3<f64>>()
                    / wsum;
                // The beam's path in the image, reaching beyond the run on each side by as many
                // returns as it has (at least six), so that the path is mostly bare road.
                let reach = (j - k + 1).max(6);
                let path: Vec<Vector2<f64>> = (k.saturating_sub(reach)..=(j + reach).min(beam.len() - 1))
                    .filter_map(|m| pix(beam[m]))
                    .map(Vector2::from)
                    .collect();
                if let Some(lidar) = project(centre)
                    && path.len() >= 8
                    && let Some(offset_px) =
                        offset_on_path(&path, &grey_at, Vector2::from(lidar), check.min_contrast)
                {
                    out.push(PaintCrossing { range_m: centre.norm(), pixel: lidar, offset_px });
                }
            }
            k = j + 1;
        }
    }
    out
}

/// The offset of `lidar` from the centre of the brightest run on the polyline `path`, along the
/// path's direction; `None` when the run is faint or cut by the path's ends.
fn offset_on_path(
    path: &[Vector2<f64>],
    grey_at: &dyn Fn(Vector2<f64>) -> f64,
    lidar: Vector2<f64>,
    min_contrast: f64,
) -> Option<f64> {
    // Samples every half pixel.
    let mut pts: Vec<Vector2<f64>> = Vec::new();
    for s in path.windows(2) {
        let n = ((s[1] - s[0]).norm() / 0.5).ceil().max(1.0) as usize;
        pts.extend((0..n).map(|q| s[0] + (s[1] - s[0]) * (q as f64 / n as f64)));
    }
    let prof: Vec<f64> = pts.iter().map(|p| grey_at(*p)).collect();
    let mut sorted = prof.clone();
    let median = *sorted.select_nth_unstable_by(prof.len() / 2, f64::total_cmp).1;
    let above: Vec<f64> = prof.iter().map(|g| (g - median).max(0.0)).collect();
    let (peak_at, peak) = above.iter().copied().enumerate().max_by(|a, b| a.1.total_cmp(&b.1))?;
    if peak < min_contrast {
        return None;
    }
    let (mut s0, mut s1) = (peak_at, peak_at);
    while s0 > 0 && above[s0 - 1] > 0.5 * peak {
        s0 -= 1;
    }
    while s1 + 1 < above.len() && above[s1 + 1] > 0.5 * peak {
        s1 += 1;
    }
    if s0 == 0 || s1 + 1 == above.len() {
        return None;
    }
    let wsum: f64 = above[s0..=s1].iter().sum();
    let centre = (s0..=s1).map(|m| pts[m] * (above[m] / wsum)).sum::<Vector2<f64>>();
    let dir = (path[path.len() - 1] - path[0]).try_normalize(1e-9)?;
    Some((lidar - centre).dot(&dir))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdmap_core::camera::Distortion;
    use hdmap_core::nalgebra::{Rotation3, Translation3, UnitQuaternion};

    const HEIGHT_M: f64 = 1.8;

    /// Paint on flat ground (LiDAR frame): two 0.15 m lane lines 3.5 m apart and a 0.4 m wide
    /// line slanting across the lane ahead.
    fn paint(x: f64, y: f64) -> bool {
        let slant = (y - (x - 20.0) * 0.3).abs() < 0.2 && (12.0..28.0).contains(&x);
        (y.abs() - 1.75).abs() < 0.075 || slant
    }

    /// A ring-less scan of the ground (40 beams, −25° … −3°, every 0.1° over ±40° of azimuth)
    /// and the image the camera sees, both cast from the same paint.
    fn scene() -> (Scan, GrayImage, CameraIntrinsics, Isometry3<f64>) {
        let mut scan = Scan { points: Vec::new(), intensity: Some(Vec::new()), ring: None };
        for b in 0..40 {
            let el = (-25.0 + 22.0 * b as f64 / 39.0f64).to_radians();
            for a in -400..=400 {
                let az = (a as f64 * 0.1).to_radians();
                let dir = Vector3::new(el.cos() * az.cos(), el.cos() * az.sin(), el.sin());
                let p = dir * (HEIGHT_M / -dir.z);
                scan.points.push([p.x, p.y, p.z]);
                scan.intensity.as_mut().expect("set").push(if paint(p.x, p.y) { 80.0 } else { 30.0 });
            }
        }
        let camera = CameraIntrinsics {
            width: 1280,
            height: 800,
            fx: 1000.0,
            fy: 1000.0,
            cx: 640.0,
            cy: 400.0,
            distortion: Distortion::BrownConrady { k1: -0.1, k2: 0.02, p1: 0.0, p2: 0.0, k3: 0.0 },
        };
        // Camera axes (x right, y down, z ahead) from the LiDAR's (x ahead, y left, z up), the
        // camera 0.4 m ahead of and 0.3 m below the LiDAR, pitched 2° down.
        let axes = Rotation3::from_matrix_unchecked(hdmap_core::nalgebra::Matrix3::new(
            0.0, -1.0, 0.0, 0.0, 0.0, -1.0, 1.0, 0.0, 0.0,
        ));
        let pitch = Rotation3::from_axis_angle(&Vector3::x_axis(), -2f64.to_radians());
        let rot = UnitQuaternion::from_rotation_matrix(&(pitch * axes));
        let cam_in_lidar = Vector3::new(0.4, 0.0, -0.3);
        let camera_from_lidar = Isometry3::from_parts(Translation3::from(-(rot * cam_in_lidar)), rot);
        let lidar_from_camera = camera_from_lidar.inverse();
        let gray = GrayImage::from_fn(camera.width, camera.height, |u, v| {
            // Pixel centres at whole coordinates, as in OpenCV.
            let ray = lidar_from_camera.rotation * camera.unproject(u as f64, v as f64);
            let origin = lidar_from_camera.translation.vector;
            if ray.z >= -1e-6 {
                return image::Luma([150]);
            }
            let p = origin + ray * ((-HEIGHT_M - origin.z) / ray.z);
            image::Luma([if paint(p.x, p.y) { 200 } else { 90 }])
        });
        (scan, gray, camera, camera_from_lidar)
    }

    #[test]
    fn offsets_are_nil_at_the_true_extrinsic_and_follow_a_turn() {
        let (scan, gray, camera, truth) = scene();
        let check = PaintCheck::default();
        let at_truth = paint_crossings(&scan, &gray, &camera, &truth, &check);
        let s = OffsetSummary::of(at_truth.iter().map(|c| c.offset_px)).expect("crossings");
        assert!(s.n >= 50, "{s:?}");
        // The LiDAR centre of a run is off the stripe's middle by at most half a return spacing.
        assert!(s.median_px.abs() < 0.5 && s.q25_px > -1.5 && s.q75_px < 1.5, "{s:?}");
        // Both lane lines and the slanted line are crossed.
        assert!(at_truth.iter().any(|c| c.pixel[0] < 400.0) && at_truth.iter().any(|c| c.pixel[0] > 880.0));
        // Turning the camera right by δ moves every LiDAR centre right by about fx·δ in the
        // image, against the beams' leftward direction.
        let delta = 0.25f64.to_radians();
        let turned = Isometry3::from_parts(
            Translation3::identity(),
            UnitQuaternion::from_axis_angle(&Vector3::y_axis(), delta),
        ) * truth;
        let t = OffsetSummary::of(
            paint_crossings(&scan, &gray, &camera, &turned, &check).iter().map(|c| c.offset_px),
        )
        .expect("crossings");
        let want = -camera.fx * delta;
        assert!((t.median_px - want).abs() < 0.8, "{t:?} vs {want:.2} px");
        // Moving the LiDAR 10 cm to the left moves near crossings more than far ones.
        let moved = truth * Translation3::new(0.0, 0.10, 0.0);
        let c = paint_crossings(&scan, &gray, &camera, &moved, &check);
        let band = |r0: f64, r1: f64| {
            OffsetSummary::of(c.iter().filter(|x| x.range_m >= r0 && x.range_m < r1).map(|x| x.offset_px))
                .expect("crossings in band")
                .median_px
        };
        let (near, far) = (band(4.0, 10.0), band(20.0, 35.0));
        assert!(near > 2.0 * far && far > 0.0, "near {near:.1} px, far {far:.1} px");
    }

    #[test]
    fn a_scan_without_intensities_or_paint_has_no_crossings() {
        let (mut scan, gray, camera, truth) = scene();
        scan.intensity.as_mut().expect("set").iter_mut().for_each(|i| *i = 30.0);
        assert!(paint_crossings(&scan, &gray, &camera, &truth, &PaintCheck::default()).is_empty());
        scan.intensity = None;
        assert!(paint_crossings(&scan, &gray, &camera, &truth, &PaintCheck::default()).is_empty());
        assert_eq!(OffsetSummary::of([1.0, f64::NAN, 2.0]), None);
    }
}
