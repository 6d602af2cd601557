//! The orthophoto and the DSM. A true orthophoto (no building lean) rendered tile by tile with
//! tiny-skia: grass, sidewalks, asphalt with patches, worn paint, vehicles, shadows, tree
//! canopy, roofs; then grain, radiometric differences between flight strips, a slight blur and
//! a JPEG round trip. Paint wear uses the same noise as the LiDAR's paint reflectivity.

use hdmap_core::{Crs, MarkingColor};
use hdmap_io::raster::{GeoRef, GeoTiffWriter, Window};
use rayon::prelude::*;
use tiny_skia::{BlendMode, Color, FillRule, Paint, PathBuilder, Pixmap, Transform};

use crate::SimError;
use crate::config::SimConfig;
use crate::geom::{P2, add, bounds, dir, left};
use crate::noise;
use crate::scene::{Object, Scene, Shape};

/// Raster extent: local coordinates of the top-left corner and pixel counts.
#[derive(Debug, Clone, Copy)]
pub struct Extent {
    /// Local x of the left edge.
    pub x0: f64,
    /// Local y of the top edge.
    pub y1: f64,
    /// Pixel size, m.
    pub cell: f64,
    /// Columns.
    pub width: usize,
    /// Rows.
    pub height: usize,
}

impl Extent {
    /// An extent covering `b` (+ margin) with cells aligned to multiples of `cell`.
    pub fn covering(b: [f64; 4], margin: f64, cell: f64) -> Self {
        let x0 = ((b[0] - margin) / cell).floor() * cell;
        let y0 = ((b[1] - margin) / cell).floor() * cell;
        let x1 = ((b[2] + margin) / cell).ceil() * cell;
        let y1 = ((b[3] + margin) / cell).ceil() * cell;
        Self {
            x0,
            y1,
            cell,
            width: ((x1 - x0) / cell).round() as usize,
            height: ((y1 - y0) / cell).round() as usize,
        }
    }

    /// Local coordinates of a pixel centre.
    pub fn center(&self, col: usize, row: usize) -> P2 {
        [self.x0 + (col as f64 + 0.5) * self.cell, self.y1 - (row as f64 + 0.5) * self.cell]
    }

    /// GDAL geotransform in absolute CRS coordinates, shifted by `offset` (east, north).
    pub fn geo_transform(&self, origin: [f64; 3], offset: [f64; 2]) -> [f64; 6] {
        [origin[0] + self.x0 + offset[0], self.cell, 0.0, origin[1] + self.y1 + offset[1], 0.0, -self.cell]
    }
}

struct Item {
    ring: Vec<P2>,
    bounds: [f64; 4],
    color: [u8; 4],
}

impl Item {
    fn new(ring: Vec<P2>, color: [u8; 4]) -> Self {
        let b = bounds(&ring);
        Self { ring, bounds: b, color }
    }
}

fn footprint(shape: &Shape) -> Vec<P2> {
    match *shape {
        Shape::Box { center, yaw, half, .. } => {
            let (u, v) = (dir(yaw), left(yaw));
            vec![
                add(add(center, u, half[0]), v, half[1]),
                add(add(center, u, -half[0]), v, half[1]),
                add(add(center, u, -half[0]), v, -half[1]),
                add(add(center, u, half[0]), v, -half[1]),
            ]
        }
        Shape::Cylinder { center, radius, .. } => {
            (0..16).map(|i| add(center, dir(i as f64 * std::f64::consts::TAU / 16.0), radius)).collect()
        }
        Shape::Ellipsoid { center, radii } => (0..24)
            .map(|i| {
                let a = i as f64 * std::f64::consts::TAU / 24.0;
                [center[0] + radii[0] * a.cos(), center[1] + radii[1] * a.sin()]
            })
            .collect(),
        Shape::Panel { center, u, v } => [(1.0, 1.0), (-1.0, 1.0), (-1.0, -1.0), (1.0, -1.0)]
            .iter()
            .map(|(a, b)| [center[0] + a * u[0] + b * v[0], center[1] + a * u[1] + b * v[1]])
            .collect(),
    }
}

fn convex_hull(mut pts: Vec<P2>) -> Vec<P2> {
    pts.sort_by(|a, b| a[0].total_cmp(&b[0]).then(a[1].total_cmp(&b[1])));
    let cross = |o: P2, a: P2, b: P2| (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);
    let mut lower: Vec<P2> = Vec::new();
    for p in &pts {
        while lower.len() >= 2 && cross(lower[lower.len() - 2], lower[lower.len() - 1], *p) <= 0.0 {
            lower.pop();
        }
        lower.push(*p);
    }
    let mut upper: Vec<P2> = Vec::new();
    for p in pts.iter().rev() {
        while upper.len() >= 2 && cross(upper[upper.len() - 2], upper[upper.len() - 1], *p) <= 0.0 {
            upper.pop();
        }
        upper.push(*p);
    }
    lower.pop();
    upper.pop();
    lower.extend(upper);
    lower
}

/// Everything drawn, in layers.
struct Layers {
    sidewalks: Vec<Item>,
    roads: Vec<Item>,
    patches: Vec<Item>,
    paint: Vec<Item>,
    vehicles: Vec<Item>,
    shadows: Vec<Item>,
    canopies: Vec<Item>,
    roofs: Vec<Item>,
}

fn layers(cfg: &SimConfig, scene: &Scene, aerial_objects: &[Object]) -> Layers {
    let map = &scene.map;
    let sidewalks = map.sidewalks.iter().map(|r| Item::new(r.clone(), [184, 181, 174, 255])).collect();
    let roads = map.surfaces.iter().map(|r| Item::new(r.clone(), [74, 74, 76, 255])).collect();
    let mut patches = Vec::new();
    for (ri, road) in map.roads.iter().enumerate() {
        let mut rng = noise::rng(cfg.seed, "patches", &[ri as i64]);
        use rand::Rng;
        let n = (road.line.length() / 25.0) as usize;
        let hw = map.half_width(ri);
        for _ in 0..n {
            let s = rng.random_range(0.0..road.line.length());
            let t = rng.random_range(-hw + 1.0..hw - 1.0);
            let (l, w) = (rng.random_range(0.8..4.5), rng.random_range(0.6..2.5));
            let (p, h) = road.line.pose(s);
            let c = add(p, left(h), t);
            let ring = vec![
                add(add(c, dir(h), l / 2.0), left(h), w / 2.0),
                add(add(c, dir(h), -l / 2.0), left(h), w / 2.0),
                add(add(c, dir(h), -l / 2.0), left(h), -w / 2.0),
                add(add(c, dir(h), l / 2.0), left(h), -w / 2.0),
            ];
            let g: u8 =
                if rng.random::<bool>() { rng.random_range(52..64) } else { rng.random_range(84..96) };
            patches.push(Item::new(ring, [g, g, g + 2, 255]));
        }
    }
    // Paint mask colour: R = freshness, G = yellow, A = coverage.
    let paint = map
        .paints
        .iter()
        .map(|p| {
            Item::new(
                p.ring.clone(),
                [(p.freshness * 255.0) as u8, if p.color == MarkingColor::Yellow { 255 } else { 0 }, 0, 255],
            )
        })
        .collect();
    let sun_az = cfg.ortho.sun_deg[0].to_radians();
    let sun_el = cfg.ortho.sun_deg[1].to_radians();
    // Shadows fall away from the sun: azimuth is clockwise from north.
    let away = [-sun_az.sin(), -sun_az.cos()];
    let reach = 1.0 / sun_el.tan();
    let mut shadows = Vec::new();
    let mut vehicles = Vec::new();
    let mut canopies = Vec::new();
    let mut roofs = Vec::new();
    let all: Vec<&Object> = scene.objects.iter().chain(aerial_objects.iter()).collect();
    for o in &all {
        let fp = footprint(&o.shape);
        let base = scene.terrain.height(fp[0][0], fp[0][1]);
        let h = (o.shape.top() - base).max(0.0);
        let shifted: Vec<P2> = fp.iter().map(|p| add(*p, away, h * reach)).collect();
        let mut pts = fp.clone();
        pts.extend(shifted);
        shadows.push(Item::new(convex_hull(pts), [0, 0, 0, 255]));
        let [r, g, b] = o.color;
        match o.class {
            hdmap_core::SemanticClass::Building => {
                roofs.push(Item::new(fp.clone(), [r, g, b, 255]));
                // Parapet: a darker rim.
                if let Shape::Box { center, yaw, half, .. } = o.shape {
                    let inner = footprint(&Shape::Box {
                        center,
                        yaw,
                        half: [half[0] - 0.6, half[1] - 0.6],
                        z: [0.0, 0.0],
                    });
                    roofs.push(Item::new(
                        inner,
                        [r.saturating_sub(18), g.saturating_sub(18), b.saturating_sub(18), 255],
                    ));
                }
            }
            hdmap_core::SemanticClass::Vegetation => canopies.push(Item::new(fp.clone(), [r, g, b, 255])),
            hdmap_core::SemanticClass::Trunk
            | hdmap_core::SemanticClass::Pole
            | hdmap_core::SemanticClass::TrafficSign => {
                roofs.push(Item::new(fp.clone(), [r, g, b, 255]));
            }
            _ => {
                vehicles.push(Item::new(fp.clone(), [r, g, b, 255]));
                if let Shape::Box { center, yaw, half, .. } = o.shape {
                    // Windscreen and roof window: darker bands.
                    let front = add(center, dir(yaw), half[0] * 0.35);
                    let glass = footprint(&Shape::Box {
                        center: front,
                        yaw,
                        half: [half[0] * 0.18, half[1] * 0.85],
                        z: [0.0, 0.0],
                    });
                    vehicles.push(Item::new(glass, [35, 40, 48, 255]));
                }
            }
        }
    }
    Layers { sidewalks, roads, patches, paint, vehicles, shadows, canopies, roofs }
}

fn fill(
    pixmap: &mut Pixmap,
    items: &[Item],
    tile: [f64; 4],
    to_px: &dyn Fn(P2) -> (f32, f32),
    blend: BlendMode,
) {
    let mut paint = Paint { anti_alias: true, blend_mode: blend, ..Paint::default() };
    for it in items {
        let b = it.bounds;
        if b[2] < tile[0] || b[0] > tile[2] || b[3] < tile[1] || b[1] > tile[3] {
            continue;
        }
        let mut pb = PathBuilder::new();
        for (i, p) in it.ring.iter().enumerate() {
            let (x, y) = to_px(*p);
            if i == 0 {
                pb.move_to(x, y);
            } else {
                pb.line_to(x, y);
            }
        }
        pb.close();
        if let Some(path) = pb.finish() {
            paint.set_color_rgba8(it.color[0], it.color[1], it.color[2], it.color[3]);
            pixmap.fill_path(&path, &paint, FillRule::Winding, Transform::identity(), None);
        }
    }
}

/// Tile size in pixels (a multiple of 8, aligned with JPEG blocks).
const TILE: usize = 512;
const MARGIN: usize = 8;

/// Classes of the paint label raster written beside the orthophoto.
pub mod paint_label {
    /// No visible paint.
    pub const NONE: u8 = 0;
    /// White paint.
    pub const WHITE: u8 = 1;
    /// Yellow paint.
    pub const YELLOW: u8 = 2;
}

/// Renders one tile: RGB (interleaved) and the paint label of every pixel (visible paint:
/// covered more than half by paint, not hidden by a vehicle, canopy or roof).
fn render_tile(
    cfg: &SimConfig,
    layers: &Layers,
    ext: &Extent,
    win: Window,
) -> Result<(Vec<u8>, Vec<u8>), SimError> {
    let (w, h) = (win.width + 2 * MARGIN, win.height + 2 * MARGIN);
    let cell = ext.cell;
    // Local coordinates of the padded tile's top-left corner (f64, then small f32 offsets).
    let tx0 = ext.x0 + (win.col as f64 - MARGIN as f64) * cell;
    let ty1 = ext.y1 - (win.row as f64 - MARGIN as f64) * cell;
    let tile = [tx0, ty1 - h as f64 * cell, tx0 + w as f64 * cell, ty1];
    let to_px = |p: P2| (((p[0] - tx0) / cell) as f32, ((ty1 - p[1]) / cell) as f32);
    let mut base =
        Pixmap::new(w as u32, h as u32).ok_or_else(|| SimError::Render("tile allocation".into()))?;
    base.fill(Color::from_rgba8(96, 118, 72, 255));
    fill(&mut base, &layers.sidewalks, tile, &to_px, BlendMode::SourceOver);
    fill(&mut base, &layers.roads, tile, &to_px, BlendMode::SourceOver);
    fill(&mut base, &layers.patches, tile, &to_px, BlendMode::SourceOver);
    let mut paint =
        Pixmap::new(w as u32, h as u32).ok_or_else(|| SimError::Render("tile allocation".into()))?;
    fill(&mut paint, &layers.paint, tile, &to_px, BlendMode::SourceOver);
    let mut over =
        Pixmap::new(w as u32, h as u32).ok_or_else(|| SimError::Render("tile allocation".into()))?;
    fill(&mut over, &layers.vehicles, tile, &to_px, BlendMode::SourceOver);
    let mut shadow =
        Pixmap::new(w as u32, h as u32).ok_or_else(|| SimError::Render("tile allocation".into()))?;
    fill(&mut shadow, &layers.shadows, tile, &to_px, BlendMode::SourceOver);
    let mut top =
        Pixmap::new(w as u32, h as u32).ok_or_else(|| SimError::Render("tile allocation".into()))?;
    fill(&mut top, &layers.canopies, tile, &to_px, BlendMode::SourceOver);
    fill(&mut top, &layers.roofs, tile, &to_px, BlendMode::SourceOver);
    let seed = cfg.seed;
    let strip = cfg.ortho.strip_m.max(1.0);
    let strip_gain = |y: f64| -> [f64; 3] {
        let f = y / strip;
        let k = f.floor();
        let g = |k: f64, c: i64| {
            1.0 + 0.07 * (noise::unit(noise::hash(seed, "strip", &[k as i64, c])) - 0.5) * 2.0
        };
        // Smooth seam over the last 10 % of a strip.
        let u = ((f - k - 0.9) / 0.1).clamp(0.0, 1.0);
        std::array::from_fn(|c| g(k, c as i64) * (1.0 - u) + g(k + 1.0, c as i64) * u)
    };
    let mut rgb = vec![0.0f32; w * h * 3];
    let (bp, pp, op, sp, tp) = (base.data(), paint.data(), over.data(), shadow.data(), top.data());
    for r in 0..h {
        let y = ty1 - (r as f64 + 0.5) * cell;
        let gain = strip_gain(y);
        for c in 0..w {
            let x = tx0 + (c as f64 + 0.5) * cell;
            let i = (r * w + c) * 4;
            let mut px = [bp[i] as f64, bp[i + 1] as f64, bp[i + 2] as f64];
            let grain = 0.92 + 0.16 * noise::fbm(seed, "grain", x, y, 0.35, 2);
            for v in &mut px {
                *v *= grain;
            }
            let cov = pp[i + 3] as f64 / 255.0;
            if cov > 0.0 {
                let fresh = pp[i] as f64 / pp[i + 3] as f64;
                let yellow = pp[i + 1] as f64 / pp[i + 3] as f64 > 0.5;
                let wear = noise::fbm(seed, "wear", x, y, 0.6, 3);
                let strength = ((fresh - wear * 0.9) * 4.0 + 0.5).clamp(0.0, 1.0) * cov;
                let col = if yellow { [222.0, 178.0, 48.0] } else { [228.0, 228.0, 222.0] };
                for k in 0..3 {
                    px[k] += (col[k] - px[k]) * strength * 0.95;
                }
            }
            let a = op[i + 3] as f64 / 255.0;
            for k in 0..3 {
                px[k] = px[k] * (1.0 - a)
                    + op[i + k] as f64 * (1.0 + 0.1 * (noise::fbm(seed, "car", x, y, 0.4, 1) - 0.5));
            }
            let s = sp[i + 3] as f64 / 255.0;
            let shade = [0.46, 0.49, 0.58];
            for k in 0..3 {
                px[k] *= 1.0 - s * (1.0 - shade[k]);
            }
            let a = tp[i + 3] as f64 / 255.0;
            if a > 0.0 {
                let leaf = 0.75 + 0.5 * noise::fbm(seed, "leaf", x, y, 0.5, 3);
                for k in 0..3 {
                    px[k] = px[k] * (1.0 - a) + tp[i + k] as f64 * leaf;
                }
            }
            for k in 0..3 {
                rgb[(r * w + c) * 3 + k] = (px[k] * gain[k]) as f32;
            }
        }
    }
    // Slight optical blur: separable [1 2 1] / 4.
    let blur = |src: &[f32], horizontal: bool| -> Vec<f32> {
        let mut out = src.to_vec();
        for r in 1..h - 1 {
            for c in 1..w - 1 {
                for k in 0..3 {
                    let (a, b) = if horizontal {
                        ((r * w + c - 1) * 3 + k, (r * w + c + 1) * 3 + k)
                    } else {
                        (((r - 1) * w + c) * 3 + k, ((r + 1) * w + c) * 3 + k)
                    };
                    out[(r * w + c) * 3 + k] = 0.25 * src[a] + 0.5 * src[(r * w + c) * 3 + k] + 0.25 * src[b];
                }
            }
        }
        out
    };
    let rgb = blur(&blur(&rgb, true), false);
    let mut labels = Vec::with_capacity(win.width * win.height);
    for r in MARGIN..MARGIN + win.height {
        for c in MARGIN..MARGIN + win.width {
            let i = (r * w + c) * 4;
            let visible = pp[i + 3] > 127 && op[i + 3] < 128 && tp[i + 3] < 128;
            labels.push(match visible {
                false => paint_label::NONE,
                true if pp[i + 1] as u32 * 2 > pp[i + 3] as u32 => paint_label::YELLOW,
                true => paint_label::WHITE,
            });
        }
    }
    let mut tile_rgb = Vec::with_capacity(win.width * win.height * 3);
    for r in MARGIN..MARGIN + win.height {
        for c in MARGIN..MARGIN + win.width {
            for k in 0..3 {
                tile_rgb.push(rgb[(r * w + c) * 3 + k].round().clamp(0.0, 255.0) as u8);
            }
        }
    }
    if cfg.ortho.jpeg_quality > 0 {
        let mut buf = Vec::new();
        let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut buf, cfg.ortho.jpeg_quality);
        let img = image::RgbImage::from_raw(win.width as u32, win.height as u32, tile_rgb)
            .ok_or_else(|| SimError::Render("tile buffer".into()))?;
        img.write_with_encoder(enc).map_err(|e| SimError::Render(e.to_string()))?;
        let dec = image::load_from_memory_with_format(&buf, image::ImageFormat::Jpeg)
            .map_err(|e| SimError::Render(e.to_string()))?;
        tile_rgb = dec.to_rgb8().into_raw();
    }
    Ok((tile_rgb, labels))
}

/// Renders the orthophoto into `path` (GeoTIFF, RGB) and its paint labels into `labels_path`
/// (GeoTIFF, one u8 band of [`paint_label`] classes, same grid). Returns the extent used.
pub fn write_orthophoto(
    cfg: &SimConfig,
    scene: &Scene,
    aerial_objects: &[Object],
    path: &std::path::Path,
    labels_path: &std::path::Path,
) -> Result<Extent, SimError> {
    let ext = Extent::covering(scene.map.bounds, cfg.ortho.margin_m, cfg.ortho.gsd_m);
    let layers = layers(cfg, scene, aerial_objects);
    let georef = GeoRef {
        geo_transform: ext.geo_transform(cfg.origin.origin, cfg.ortho.georef_offset_m),
        crs: Crs::Epsg(cfg.origin.epsg),
    };
    let mut writer = GeoTiffWriter::create::<u8>(path, ext.width, ext.height, 3, &georef, None)?;
    let mut label_writer = GeoTiffWriter::create::<u8>(labels_path, ext.width, ext.height, 1, &georef, None)?;
    let windows = hdmap_io::raster::tiles(ext.width, ext.height, TILE, 0);
    // A band of tiles at a time bounds memory; tiles of a band render in parallel.
    let per_band = ext.width.div_ceil(TILE).max(1);
    for band in windows.chunks(per_band * 2) {
        type Rendered = Result<(Vec<u8>, Vec<u8>), SimError>;
        let rendered: Vec<Rendered> = band.par_iter().map(|w| render_tile(cfg, &layers, &ext, *w)).collect();
        for (w, data) in band.iter().zip(rendered) {
            let (data, labels) = data?;
            for k in 0..3 {
                let chan: Vec<u8> = data.iter().skip(k).step_by(3).copied().collect();
                writer.write_window(k + 1, *w, chan)?;
            }
            label_writer.write_window(1, *w, labels)?;
        }
    }
    writer.finish()?;
    label_writer.finish()?;
    Ok(ext)
}

/// Writes the DSM (float32 GeoTIFF, heights above the vertical datum).
pub fn write_dsm(
    cfg: &SimConfig,
    scene: &Scene,
    aerial_objects: &[Object],
    path: &std::path::Path,
) -> Result<Extent, SimError> {
    let ext = Extent::covering(scene.map.bounds, cfg.ortho.margin_m, cfg.ortho.dsm_cell_m);
    let georef = GeoRef {
        geo_transform: ext.geo_transform(cfg.origin.origin, [0.0, 0.0]),
        crs: Crs::Epsg(cfg.origin.epsg),
    };
    let mut writer = GeoTiffWriter::create::<f32>(path, ext.width, ext.height, 1, &georef, None)?;
    let mut grid = crate::geom::Grid::new(scene.map.bounds, 6.0);
    for (i, o) in aerial_objects.iter().enumerate() {
        grid.insert(i as u32, o.shape.bounds());
    }
    let oz = cfg.origin.origin[2];
    for w in hdmap_io::raster::tiles(ext.width, ext.height, 1024, 0) {
        let data: Vec<f32> = (0..w.height)
            .into_par_iter()
            .flat_map_iter(|r| {
                let ext = &ext;
                let grid = &grid;
                (0..w.width).map(move |c| {
                    let p = ext.center(w.col + c, w.row + r);
                    let extra: Vec<Object> = grid.at(p).iter().map(|&i| aerial_objects[i as usize]).collect();
                    (oz + scene.surface_height(p, &extra)) as f32
                })
            })
            .collect();
        writer.write_window(1, w, data)?;
    }
    writer.finish()?;
    Ok(ext)
}
