//! How well the reference extrinsic of each real PJLab (OpenCalib) LiDAR–camera pair lines
//! up road paint, measured independently of the targetless objective.
//!
//! Along each LiDAR beam on the road, a run of bright returns (≥ 1.4 × the asphalt around it)
//! is a paint crossing. Its intensity-weighted centre is projected with the extrinsic under
//! test; the image is sampled along the beam's projected path, and the bright run there (grey
//! above the path's median by at least half the peak) gives the paint's centre in the image.
//! The offset between the two, measured along the beam's direction in the image, is what the
//! extrinsic leaves; beams run about level in the image, so this is mostly a horizontal offset.
//!
//! Besides the reference, each pair is measured with the reference changed on purpose: the
//! camera turned by +0.25° in yaw (every offset should move by about fx·0.25°, which checks the
//! measurement), and the LiDAR placed 0.30 m further forward or back, or 0.10 m further left
//! (how much the frame's paint tells about each part of the lever arm).
//!
//! `cargo run --release -p hdmap-calib --example paint_offsets_pjlab`

use hdmap_calib::camlidar::{self, Scan};
use hdmap_core::camera::CameraIntrinsics;
use hdmap_core::nalgebra::{Isometry3, Point3, Translation3, UnitQuaternion, Vector3};
use image::GrayImage;

/// Ground returns used: range band, metres, and below the sensor by at least this much.
const RANGE_M: (f64, f64) = (4.0, 35.0);
const BELOW_SENSOR_M: f64 = 1.2;
/// Bright: this many times the running median of the beam's intensities (31 returns).
const PAINT_RATIO: f64 = 1.4;
/// Returns of one beam without a ring channel: elevations closer than this, degrees.
const ELEVATION_GAP_DEG: f64 = 0.04;

/// One paint crossing: range (m), in the image's right half, offset along the beam (px).
struct Crossing {
    range_m: f64,
    right: bool,
    offset_px: f64,
}

fn beams(scan: &Scan, keep: &[usize]) -> Vec<Vec<usize>> {
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
            // Cluster by elevation: a new beam where sorted elevations jump.
            let el = |i: usize| p[i][2].atan2(p[i][0].hypot(p[i][1])).to_degrees();
            let mut s: Vec<usize> = keep.to_vec();
            s.sort_by(|&a, &b| el(a).total_cmp(&el(b)));
            let mut out: Vec<Vec<usize>> = Vec::new();
            let mut last = f64::NEG_INFINITY;
            for i in s {
                if el(i) - last > ELEVATION_GAP_DEG || out.is_empty() {
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

fn crossings(scan: &Scan, gray: &GrayImage, cam: &CameraIntrinsics, t: &Isometry3<f64>) -> Vec<Crossing> {
    let intensity = scan.intensity.as_ref().expect("PJLab scans carry intensity");
    let (w, h) = (gray.width() as f64, gray.height() as f64);
    let pix = |i: usize| {
        let q = t * Point3::from(scan.points[i]);
        cam.project(&q.coords).filter(|[u, v]| *u > 5.0 && *v > 5.0 && *u < w - 5.0 && *v < h - 5.0)
    };
    let range = |i: usize| Vector3::from(scan.points[i]).norm();
    let keep: Vec<usize> = (0..scan.points.len())
        .filter(|&i| {
            let r = range(i);
            r > RANGE_M.0 && r < RANGE_M.1 && scan.points[i][2] < -BELOW_SENSOR_M && pix(i).is_some()
        })
        .collect();
    let grey_at = |u: f64, v: f64| {
        let (x, y) = (u.round().clamp(0.0, w - 1.0) as u32, v.round().clamp(0.0, h - 1.0) as u32);
        gray.get_pixel(x, y)[0] as f64
    };
    let mut out = Vec::new();
    for beam in beams(scan, &keep) {
        if beam.len() < 20 {
            continue;
        }
        let it: Vec<f64> = beam.iter().map(|&i| intensity[i] as f64).collect();
        let local: Vec<f64> = (0..it.len())
            .map(|k| {
                let mut win: Vec<f64> = it[k.saturating_sub(15)..(k + 16).min(it.len())].to_vec();
                let m = win.len() / 2;
                *win.select_nth_unstable_by(m, f64::total_cmp).1
            })
            .collect();
        let bright: Vec<bool> = (0..it.len()).map(|k| it[k] > PAINT_RATIO * local[k]).collect();
        let azimuth = |i: usize| scan.points[i][1].atan2(scan.points[i][0]);
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
            let next = j + 1;
            // Two or more bright returns, darker ones on both sides, no gap in the beam.
            let gapless = (azimuth(beam[j + 1]) - azimuth(beam[k - 1])).abs()
                < 0.2f64.to_radians() * (j - k + 4) as f64;
            if j > k && !bright[k - 1] && !bright[j + 1] && gapless {
                let wts: Vec<f64> = (k..=j).map(|m| it[m] - local[m]).collect();
                let sum: f64 = wts.iter().sum();
                let centre: Vector3<f64> = (k..=j)
                    .zip(&wts)
                    .map(|(m, wt)| Vector3::from(scan.points[beam[m]]) * *wt)
                    .sum::<Vector3<f64>>()
                    / sum;
                let lidar_px = cam.project(&(t * Point3::from(centre)).coords);
                // The beam's path in the image, six returns beyond the run on each side.
                let path: Vec<[f64; 2]> = (k.saturating_sub(6)..=(j + 6).min(beam.len() - 1))
                    .filter_map(|m| pix(beam[m]))
                    .collect();
                if let Some(lp) = lidar_px
                    && path.len() >= 8
                    && let Some(c) = image_run(&path, &grey_at, lp)
                {
                    out.push(Crossing { range_m: centre.norm(), right: lp[0] >= w / 2.0, offset_px: c });
                }
            }
            k = next;
        }
    }
    out
}

/// The bright run on the polyline `path` with the highest grey level, and the offset of `lidar`
/// from its centre along the path's direction, px.
fn image_run(path: &[[f64; 2]], grey_at: &dyn Fn(f64, f64) -> f64, lidar: [f64; 2]) -> Option<f64> {
    let mut pts: Vec<[f64; 2]> = Vec::new();
    for s in path.windows(2) {
        let d = ((s[1][0] - s[0][0]).powi(2) + (s[1][1] - s[0][1]).powi(2)).sqrt();
        let n = (d / 0.5).ceil().max(1.0) as usize;
        for q in 0..n {
            let f = q as f64 / n as f64;
            pts.push([s[0][0] + f * (s[1][0] - s[0][0]), s[0][1] + f * (s[1][1] - s[0][1])]);
        }
    }
    let prof: Vec<f64> = pts.iter().map(|p| grey_at(p[0], p[1])).collect();
    let mut sorted = prof.clone();
    let median = *sorted.select_nth_unstable_by(prof.len() / 2, f64::total_cmp).1;
    let above: Vec<f64> = prof.iter().map(|g| (g - median).max(0.0)).collect();
    let (peak_at, peak) = above.iter().copied().enumerate().max_by(|a, b| a.1.total_cmp(&b.1))?;
    if peak < 20.0 {
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
        return None; // the run is cut by the window: its centre is unknown
    }
    let wsum: f64 = above[s0..=s1].iter().sum();
    let centre = (s0..=s1)
        .fold([0.0, 0.0], |a, m| [a[0] + pts[m][0] * above[m] / wsum, a[1] + pts[m][1] * above[m] / wsum]);
    let (a, b) = (path[0], path[path.len() - 1]);
    let dir = Vector3::new(b[0] - a[0], b[1] - a[1], 0.0).normalize();
    Some((lidar[0] - centre[0]) * dir.x + (lidar[1] - centre[1]) * dir.y)
}

fn summary(c: &[Crossing], band: (f64, f64), right: Option<bool>) -> String {
    let mut v: Vec<f64> = c
        .iter()
        .filter(|x| x.range_m >= band.0 && x.range_m < band.1 && right.is_none_or(|r| x.right == r))
        .map(|x| x.offset_px)
        .collect();
    if v.len() < 3 {
        return format!("n={:3}", v.len());
    }
    v.sort_by(f64::total_cmp);
    let q = |f: f64| v[((v.len() - 1) as f64 * f).round() as usize];
    format!("n={:3} median {:+6.1} px (quartiles {:+6.1} … {:+6.1})", v.len(), q(0.5), q(0.25), q(0.75))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = hdmap_io::testdata::shared_data("pjlab_sensorscalib").ok_or("../shared/data not found")?;
    for s in hdmap_io::pjlab::lidar_camera_samples(&root)? {
        let scan = camlidar::read_scan(&s.scan)?;
        let gray = hdmap_io::image::read_image(&s.image)?.to_luma8();
        println!("{} (fx {:.0} px: 0.1° ≈ {:.1} px)", s.name, s.camera.fx, s.camera.fx * 0.1f64.to_radians());
        let yaw = UnitQuaternion::from_scaled_axis(Vector3::y() * 0.25f64.to_radians());
        let rows = [
            ("reference", s.camera_from_lidar),
            (
                "reference, camera turned +0.25° in yaw",
                Isometry3::from_parts(Translation3::identity(), yaw) * s.camera_from_lidar,
            ),
            // Lever-arm changes, in the LiDAR frame (x forward, y left).
            (
                "reference, LiDAR placed 0.30 m further forward",
                s.camera_from_lidar * Translation3::new(0.30, 0.0, 0.0),
            ),
            (
                "reference, LiDAR placed 0.30 m further back",
                s.camera_from_lidar * Translation3::new(-0.30, 0.0, 0.0),
            ),
            (
                "reference, LiDAR placed 0.10 m further left",
                s.camera_from_lidar * Translation3::new(0.0, 0.10, 0.0),
            ),
        ];
        for (tag, t) in rows {
            let c = crossings(&scan, &gray, &s.camera, &t);
            println!("  {tag}: all {}", summary(&c, (0.0, f64::INFINITY), None));
            for band in [(4.0, 12.0), (12.0, 20.0), (20.0, 35.0)] {
                for (side, right) in [("left ", false), ("right", true)] {
                    println!("    {:>2}–{:>2} m {side}: {}", band.0, band.1, summary(&c, band, Some(right)));
                }
            }
        }
    }
    Ok(())
}
