//! Picture checks from the files a simulation wrote (read back like any user would): the
//! orthophoto with the ground-truth layout drawn over it, and top-down views of the
//! accumulated LiDAR drive coloured by intensity and by label.

use std::path::{Path, PathBuf};

use hdmap_core::semantic::unpack_label;
use hdmap_core::{FrameId, RoadLayout, SemanticClass};
use hdmap_io::raster::{Raster, Window};
use image::{Rgb, RgbImage};
use tiny_skia::{Color, FillRule, Paint, PathBuilder, Pixmap, Stroke, Transform};

use crate::SimError;
use crate::files;

/// Paths of the images written.
#[derive(Debug, Clone)]
pub struct Previews {
    /// Orthophoto with the layout.
    pub ortho_layout: PathBuf,
    /// LiDAR by intensity.
    pub lidar_intensity: PathBuf,
    /// LiDAR by label.
    pub lidar_labels: PathBuf,
}

/// Colour of a class in label previews (SemanticKITTI-like palette).
pub fn class_color(c: Option<SemanticClass>) -> [u8; 3] {
    use SemanticClass as S;
    match c {
        Some(S::Road) => [255, 0, 255],
        Some(S::LaneMarking) => [255, 255, 255],
        Some(S::Sidewalk) => [75, 0, 75],
        Some(S::Terrain) => [150, 240, 80],
        Some(S::Building) => [255, 200, 0],
        Some(S::Vegetation) => [0, 175, 0],
        Some(S::Trunk) => [135, 60, 0],
        Some(S::Pole) => [255, 240, 150],
        Some(S::TrafficSign) => [255, 0, 0],
        Some(S::Car) => [100, 150, 245],
        Some(S::MovingCar) => [245, 50, 50],
        Some(S::MovingPerson) => [255, 30, 160],
        Some(S::MovingBicyclist) => [200, 40, 255],
        _ => [90, 90, 90],
    }
}

fn err(p: &Path, e: impl std::fmt::Display) -> SimError {
    SimError::Render(format!("{}: {e}", p.display()))
}

/// Orthophoto (downsampled to at most `max_px` wide) with the layout drawn in its CRS.
pub fn ortho_with_layout(
    ortho: &Path,
    layout: &RoadLayout,
    out: &Path,
    max_px: usize,
) -> Result<(), SimError> {
    let r = Raster::open(ortho)?;
    let g = r.georef()?;
    let (w, h) = (r.info.width, r.info.height);
    let k = w.div_ceil(max_px).max(1);
    let (ow, oh) = (w / k, h / k);
    let mut img = Pixmap::new(ow as u32, oh as u32).ok_or_else(|| err(out, "allocation"))?;
    let bands: Vec<Vec<u8>> = (1..=3)
        .map(|b| r.read_window(b, Window { col: 0, row: 0, width: w, height: h }))
        .collect::<Result<_, _>>()?;
    let data = img.data_mut();
    for y in 0..oh {
        for x in 0..ow {
            let i = (y * k) * w + x * k;
            let o = (y * ow + x) * 4;
            data[o] = bands[0][i];
            data[o + 1] = bands[1][i];
            data[o + 2] = bands[2][i];
            data[o + 3] = 255;
        }
    }
    let to_px = |x: f64, y: f64| {
        let p = g.world_to_pixel(x, y);
        ((p[0] / k as f64) as f32, (p[1] / k as f64) as f32)
    };
    let mut draw = |pts: &[[f64; 2]], closed: bool, rgb: [u8; 3], width: f32| {
        // (A degenerate path makes tiny-skia log a warning: skip it.)
        if pts.windows(2).all(|w| (w[0][0] - w[1][0]).abs() + (w[0][1] - w[1][1]).abs() < 1e-9) {
            return;
        }
        let mut pb = PathBuilder::new();
        for (i, p) in pts.iter().enumerate() {
            let (x, y) = to_px(p[0], p[1]);
            if i == 0 {
                pb.move_to(x, y);
            } else {
                pb.line_to(x, y);
            }
        }
        if closed {
            pb.close();
        }
        if let Some(path) = pb.finish() {
            let mut paint = Paint { anti_alias: true, ..Paint::default() };
            paint.set_color(Color::from_rgba8(rgb[0], rgb[1], rgb[2], 230));
            img.stroke_path(
                &path,
                &paint,
                &Stroke { width, ..Stroke::default() },
                Transform::identity(),
                None,
            );
        }
    };
    let xy =
        |v: &[hdmap_core::nalgebra::Point3<f64>]| -> Vec<[f64; 2]> { v.iter().map(|p| [p.x, p.y]).collect() };
    for c in &layout.road_centerlines {
        draw(&xy(&c.points), false, [255, 0, 200], 2.0);
    }
    for l in &layout.lanes {
        draw(
            &xy(&l.center_line),
            false,
            if l.in_intersection { [80, 200, 255] } else { [40, 120, 255] },
            1.0,
        );
    }
    for b in &layout.lane_boundaries {
        let c = match b.line_type {
            hdmap_core::LineType::Virtual => continue,
            hdmap_core::LineType::Dashed => [0, 255, 120],
            hdmap_core::LineType::DoubleSolid => [255, 170, 0],
            _ => [255, 60, 60],
        };
        draw(&xy(&b.points), false, c, 1.5);
    }
    for e in &layout.road_edges {
        draw(&xy(&e.points), false, [160, 60, 255], 1.5);
    }
    for s in &layout.stop_lines {
        draw(&xy(&s.points), false, [255, 0, 0], 3.0);
    }
    for c in &layout.crosswalks {
        draw(&xy(&c.polygon), true, [255, 255, 0], 1.5);
    }
    for m in &layout.surface_marks {
        draw(&xy(&m.polygon), true, [0, 255, 255], 1.2);
    }
    img.save_png(out).map_err(|e| err(out, e))
}

/// Top-down views (intensity and label) of every scan of a simulated drive, each point placed
/// with the true pose at its own time (deskewed), at `cell_m` per pixel.
pub fn lidar_top_down(
    dir: &Path,
    out_intensity: &Path,
    out_labels: &Path,
    cell_m: f64,
) -> Result<(), SimError> {
    let traj = hdmap_io::trajectory::read_pose_csv(
        &dir.join(files::TRAJECTORY_TRUE),
        FrameId::World,
        FrameId::Vehicle,
    )?;
    let rig = hdmap_io::rig::read_rig(&dir.join(files::RIG_TRUE))?;
    let v_l = rig.transform(FrameId::Vehicle, FrameId::Lidar(0))?;
    let offset_ns = rig.time_offset_ns(FrameId::Lidar(0));
    let mut scans: Vec<PathBuf> = std::fs::read_dir(dir.join(files::LIDAR_DIR))
        .map_err(|e| err(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "pcd"))
        .collect();
    scans.sort();
    let mut pts: Vec<([f64; 2], f32, u32)> = Vec::new();
    for scan in &scans {
        let f = hdmap_io::pcd::read_pcd(scan)?;
        let name = scan.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
        let labels = hdmap_io::labels::read_labels(
            &dir.join(files::LABELS_DIR).join(format!("{name}.label")),
            Some(f.cloud.len()),
        )?;
        let times = f.cloud.time_s.as_ref().ok_or_else(|| err(scan, "no per-point time"))?;
        let inten = f.cloud.intensity.as_ref().ok_or_else(|| err(scan, "no intensity"))?;
        for (i, p) in f.cloud.positions.iter().enumerate() {
            let stamp = hdmap_core::time::seconds_to_ns(times[i]) - offset_ns;
            let Ok(w_v) = traj.interpolate(stamp) else { continue };
            let q = w_v * v_l * hdmap_core::nalgebra::Point3::new(p[0], p[1], p[2]);
            pts.push(([q.x, q.y], inten[i], labels[i]));
        }
    }
    if pts.is_empty() {
        return Err(err(dir, "no LiDAR points"));
    }
    let b = pts
        .iter()
        .fold([f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY], |b, (p, _, _)| {
            [b[0].min(p[0]), b[1].min(p[1]), b[2].max(p[0]), b[3].max(p[1])]
        });
    let (w, h) = (((b[2] - b[0]) / cell_m) as u32 + 1, ((b[3] - b[1]) / cell_m) as u32 + 1);
    let mut acc = vec![(0.0f32, 0u32); (w * h) as usize];
    let mut lab = vec![0u32; (w * h) as usize];
    for (p, i, l) in &pts {
        let x = ((p[0] - b[0]) / cell_m) as u32;
        let y = ((b[3] - p[1]) / cell_m) as u32;
        let k = (y * w + x) as usize;
        acc[k].0 += i;
        acc[k].1 += 1;
        lab[k] = *l;
    }
    let mut a = RgbImage::new(w, h);
    let mut c = RgbImage::new(w, h);
    for k in 0..acc.len() {
        let (x, y) = (k as u32 % w, k as u32 / w);
        if acc[k].1 > 0 {
            let v = (acc[k].0 / acc[k].1 as f32).clamp(0.0, 255.0);
            let g = (255.0 * (v / 255.0).powf(0.5)) as u8;
            a.put_pixel(x, y, Rgb([g, g, g]));
            let (cls, _) = unpack_label(lab[k]);
            c.put_pixel(x, y, Rgb(class_color(SemanticClass::from_id(cls))));
        }
    }
    a.save(out_intensity).map_err(|e| err(out_intensity, e))?;
    c.save(out_labels).map_err(|e| err(out_labels, e))?;
    Ok(())
}

/// Writes all previews of a simulation output directory into `out_dir`.
pub fn write_previews(sim_dir: &Path, out_dir: &Path) -> Result<Previews, SimError> {
    std::fs::create_dir_all(out_dir).map_err(|e| err(out_dir, e))?;
    let layout = hdmap_io::layout::read_layout_geojson(&sim_dir.join(files::LAYOUT_GEOJSON))?;
    let p = Previews {
        ortho_layout: out_dir.join("ortho_layout.png"),
        lidar_intensity: out_dir.join("lidar_intensity.png"),
        lidar_labels: out_dir.join("lidar_labels.png"),
    };
    ortho_with_layout(&sim_dir.join(files::ORTHO), &layout, &p.ortho_layout, 2400)?;
    lidar_top_down(sim_dir, &p.lidar_intensity, &p.lidar_labels, 0.1)?;
    let _ = FillRule::Winding;
    Ok(p)
}
