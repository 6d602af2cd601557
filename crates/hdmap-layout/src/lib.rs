//! # hdmap-layout — orthophoto → vector road layout
//!
//! The sky half of hybrid mapping. [`extract_layout`] streams an orthophoto of any size by
//! overlapping tiles (GDAL windows, in parallel), segments paint ([`segment`]), turns paint
//! components into pieces ([`pieces`]), recognises stop lines, crosswalks and arrows
//! ([`marks`]; arrows under parked cars or joined to their lane line are read from their row,
//! [`arrow_rows`]), chains line pieces into solid / dashed / double lane boundaries with their dash
//! pattern, bridging occlusions but never across stop lines or crosswalks ([`lines`]), pairs
//! boundaries into lanes with centre lines, successors, neighbours and junction movements
//! ([`lanes`]), and lifts every vertex to 3D from the DSM. The result is a
//! [`hdmap_core::RoadLayout`] in the orthophoto's CRS.

pub mod arrow_rows;
pub mod config;
pub mod geom;
pub mod lanes;
pub mod learned;
pub mod lines;
pub mod marks;
pub mod pieces;
pub mod roads;
pub mod segment;

use std::path::Path;

use hdmap_core::nalgebra::Point3;
use hdmap_core::{
    BoundaryRef, Crosswalk, ElementId, GeoOrigin, Issues, Lane, LaneBoundary, MarkKind, RoadLayout, StopLine,
    SurfaceMark, VerticalDatum,
};
use hdmap_io::IoError;
use hdmap_io::raster::{GeoRef, Raster, Window};
use rayon::prelude::*;
use thiserror::Error;

pub use config::LayoutConfig;
use geom::P2;
use marks::Shape;
use pieces::Piece;
use segment::{RgbTile, Segmenter};

/// Errors of the layout stage.
#[derive(Debug, Error)]
pub enum LayoutError {
    /// Reading the orthophoto or DSM failed.
    #[error(transparent)]
    Io(#[from] IoError),
    /// The orthophoto cannot be used (bands, CRS without EPSG code, ...).
    #[error("{path}: {message}")]
    Input {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
}

/// The raw findings before ids and heights are assigned.
struct Findings {
    boundaries: Vec<lines::FoundBoundary>,
    stops: Vec<marks::FoundStopLine>,
    crosswalks: Vec<marks::FoundCrosswalk>,
    arrows: Vec<marks::FoundArrow>,
    graph: lanes::LaneGraph,
}

fn io_input(path: &Path, message: impl Into<String>) -> LayoutError {
    LayoutError::Input { path: path.display().to_string(), message: message.into() }
}

/// Pieces of one tile: components kept whole when they lie inside the tile and their centroid
/// is in the tile's core; components touching the tile's border (long lines) clipped to the core.
fn tile_pieces(
    ortho: &Path,
    seg: &dyn Segmenter,
    georef: &GeoRef,
    gsd: f64,
    win: Window,
    core: [usize; 4],
) -> Result<Vec<Piece>, LayoutError> {
    let rgb = read_rgb(&Raster::open(ortho)?, win)?;
    let mask = seg.segment(&RgbTile { w: win.width, h: win.height, rgb: &rgb }, gsd);
    let lum = |x: usize, y: usize| {
        let p = &rgb[(y * win.width + x) * 3..(y * win.width + x) * 3 + 3];
        0.299 * p[0] as f64 + 0.587 * p[1] as f64 + 0.114 * p[2] as f64
    };
    let min_px = ((0.02 / (gsd * gsd)).ceil() as usize).max(3);
    let mut out = Vec::new();
    let in_core = |c: usize, r: usize| c >= core[0] && c < core[2] && r >= core[1] && r < core[3];
    for (px, yellow) in pieces::components(&mask, win.width, win.height, min_px) {
        for (px, yellow) in split_if_mixed(px, yellow, &mask, win.width, gsd, min_px) {
            let touches =
                px.iter().any(|&(x, y)| x == 0 || y == 0 || x + 1 == win.width || y + 1 == win.height);
            let abs: Vec<(usize, usize)> = px.iter().map(|&(x, y)| (x + win.col, y + win.row)).collect();
            let keep: Vec<(usize, usize)> = if touches {
                abs.into_iter().filter(|&(c, r)| in_core(c, r)).collect()
            } else {
                let n = abs.len() as f64;
                let (cx, cy) = (
                    abs.iter().map(|p| p.0 as f64).sum::<f64>() / n,
                    abs.iter().map(|p| p.1 as f64).sum::<f64>() / n,
                );
                if in_core(cx as usize, cy as usize) { abs } else { Vec::new() }
            };
            if keep.len() < min_px {
                continue;
            }
            // Paint lies on pavement: the ground on both sides of the mark is darker than the
            // mark and alike. A bright roof's edge (bright on one side) or a lit kerb fails this;
            // so does a dash along a shadow's edge, which `find` keeps when its line goes on.
            let sides = sides_of(&px, &mask, &lum, win.width, win.height, gsd);
            if !sides.dark {
                continue;
            }
            let pts: Vec<P2> =
                keep.iter().map(|&(c, r)| georef.pixel_to_world(c as f64 + 0.5, r as f64 + 0.5)).collect();
            let mut piece = Piece::new(pts, yellow, gsd);
            piece.unlike_sides = !sides.alike;
            out.push(piece);
        }
    }
    Ok(out)
}

/// A component that is not a clean stroke (e.g. a stop line touching the ends of lane lines)
/// is split into its wide parts (binary opening with a ~0.32 m square keeps bars, stripes and
/// arrow heads) and the thin rest (lines).
fn split_if_mixed(
    px: Vec<(usize, usize)>,
    yellow: f64,
    mask: &[segment::PaintClass],
    w: usize,
    gsd: f64,
    min_px: usize,
) -> Vec<(Vec<(usize, usize)>, f64)> {
    let probe = pixel_piece(&px, yellow, gsd);
    if marks::shape_of(&probe) != Shape::Other || probe.area < 0.4 {
        return vec![(px, yellow)];
    }
    // White touching yellow (a stop line meeting the centre line): split by colour first.
    if yellow > 0.05 && yellow < 0.95 {
        let (x0, y0) = px.iter().fold((usize::MAX, usize::MAX), |a, p| (a.0.min(p.0), a.1.min(p.1)));
        let (x1, y1) = px.iter().fold((0, 0), |a, p| (a.0.max(p.0), a.1.max(p.1)));
        let (bw, bh) = (x1 - x0 + 1, y1 - y0 + 1);
        let mut out = Vec::new();
        for class in [segment::PaintClass::White, segment::PaintClass::Yellow] {
            let mut cls = vec![segment::PaintClass::None; bw * bh];
            for &(x, y) in &px {
                if mask[y * w + x] == class {
                    cls[(y - y0) * bw + x - x0] = class;
                }
            }
            for (sub, _) in pieces::components(&cls, bw, bh, min_px) {
                let abs: Vec<(usize, usize)> = sub.into_iter().map(|(x, y)| (x + x0, y + y0)).collect();
                let yl = if class == segment::PaintClass::Yellow { 1.0 } else { 0.0 };
                out.extend(split_if_mixed(abs, yl, mask, w, gsd, min_px));
            }
        }
        return out;
    }
    let yellow_share = |abs: &[(usize, usize)]| yellow_share_of(abs, mask, w);
    // A whole arrow that the shape test does not take for one (an L of a left arrow tilts its
    // principal axis) stays whole when it fits a glyph.
    if yellow <= 0.5 && marks::arrow_sized(&probe) && marks::recognise_arrow(&probe, gsd).is_some() {
        return vec![(px, yellow)];
    }
    let opened = split_opening(px.clone(), mask, w, gsd, min_px);
    // A white lane line with something grown onto it (an arrow head touching it, a car
    // roof's rim): the line first, then the rest on its own — when that explains more of the
    // component as lines, bars and arrows than the opening does (a stop line over lane-line
    // ends is better split by the opening). Yellow pieces are left whole: two centre lines
    // merged into one are a double line.
    if yellow <= 0.5 {
        let parts = peel_line(px, gsd, min_px);
        if parts.len() > 1 {
            let peeled: Vec<(Vec<(usize, usize)>, f64)> = parts
                .into_iter()
                .flat_map(|p| {
                    let yl = yellow_share(&p);
                    split_if_mixed(p, yl, mask, w, gsd, min_px)
                })
                .collect();
            if explained(&peeled, gsd) as f64 > 1.1 * explained(&opened, gsd) as f64 {
                return peeled;
            }
        }
    }
    opened
}

/// A component's shape in tile pixel units scaled to metres (for shape tests, not placement).
fn pixel_piece(px: &[(usize, usize)], yellow: f64, gsd: f64) -> Piece {
    Piece::new(px.iter().map(|&(x, y)| [x as f64 * gsd, y as f64 * gsd]).collect(), yellow, gsd)
}

/// Share of a component's pixels that the mask calls yellow.
fn yellow_share_of(px: &[(usize, usize)], mask: &[segment::PaintClass], w: usize) -> f64 {
    px.iter().filter(|&&(x, y)| mask[y * w + x] == segment::PaintClass::Yellow).count() as f64
        / px.len() as f64
}

/// Pixels of the parts that have a recognised shape: lines, bars, and blobs that fit an arrow.
fn explained(parts: &[(Vec<(usize, usize)>, f64)], gsd: f64) -> usize {
    parts
        .iter()
        .filter(|(px, yl)| {
            let p = pixel_piece(px, *yl, gsd);
            match marks::shape_of(&p) {
                Shape::Line | Shape::Bar => true,
                Shape::Blob => marks::recognise_arrow(&p, gsd).is_some(),
                Shape::Other => false,
            }
        })
        .map(|(px, _)| px.len())
        .sum()
}

/// The wide parts of a component (binary opening with a ~0.32 m square) and the thin rest,
/// each thin or wide part that is still no clean stroke peeled of its straight line.
fn split_opening(
    px: Vec<(usize, usize)>,
    mask: &[segment::PaintClass],
    w: usize,
    gsd: f64,
    min_px: usize,
) -> Vec<(Vec<(usize, usize)>, f64)> {
    let yellow_share = |abs: &[(usize, usize)]| yellow_share_of(abs, mask, w);
    let (x0, y0) = px.iter().fold((usize::MAX, usize::MAX), |a, p| (a.0.min(p.0), a.1.min(p.1)));
    let (x1, y1) = px.iter().fold((0, 0), |a, p| (a.0.max(p.0), a.1.max(p.1)));
    let (bw, bh) = (x1 - x0 + 1, y1 - y0 + 1);
    let mut grid = vec![false; bw * bh];
    for &(x, y) in &px {
        grid[(y - y0) * bw + x - x0] = true;
    }
    let k = ((0.32 / gsd).round() as usize).max(2);
    let r = k / 2;
    let morph = |g: &[bool], erode: bool| -> Vec<bool> {
        let mut out = vec![false; bw * bh];
        for y in 0..bh {
            for x in 0..bw {
                let mut all = true;
                let mut any = false;
                for yy in y.saturating_sub(r)..=(y + r).min(bh - 1) {
                    for xx in x.saturating_sub(r)..=(x + r).min(bw - 1) {
                        let v = g[yy * bw + xx];
                        all &= v;
                        any |= v;
                    }
                }
                out[y * bw + x] = if erode { all } else { any };
            }
        }
        out
    };
    let wide: Vec<bool> = {
        let e = morph(&grid, true);
        let d = morph(&e, false);
        d.iter().zip(&grid).map(|(a, b)| *a && *b).collect()
    };
    let thin: Vec<bool> = grid.iter().zip(&wide).map(|(g, w)| *g && !*w).collect();
    let mut out = Vec::new();
    for part in [wide, thin] {
        let cls: Vec<segment::PaintClass> = part
            .iter()
            .map(|v| if *v { segment::PaintClass::White } else { segment::PaintClass::None })
            .collect();
        for (sub, _) in pieces::components(&cls, bw, bh, min_px) {
            let abs: Vec<(usize, usize)> = sub.into_iter().map(|(x, y)| (x + x0, y + y0)).collect();
            let parts = if yellow_share(&abs) <= 0.5 { peel_line(abs, gsd, min_px) } else { vec![abs] };
            for abs in parts {
                let yl = yellow_share(&abs);
                out.push((abs, yl));
            }
        }
    }
    out
}

/// A component that is no clean stroke — a lane line with an arrow head, a light car roof or a
/// shadow rim grown onto it — is cut into its straight stroke and the rest. The stroke is the
/// densest 0.2 m band (direction searched within ±6° of the principal axis, offset across
/// it), widened to the stroke's own width; pixels where something crosses the stroke stay on
/// both parts. The cut is made only when the stroke is at least 2 m long with on average 0.1 m
/// of paint across it, and for components up to 40 m²; otherwise the component is returned
/// whole.
fn peel_line(px: Vec<(usize, usize)>, gsd: f64, min_px: usize) -> Vec<Vec<(usize, usize)>> {
    let probe = pixel_piece(&px, 0.0, gsd);
    // (Roofs, canopies and shadows are far larger than a line with a car or an arrow on it.)
    if marks::shape_of(&probe) != Shape::Other || probe.length < 3.0 || probe.area > 40.0 {
        return vec![px];
    }
    // The attached blob tilts the principal axis: search the line's direction within ±6° of it
    // (0.25° steps) and its offset, for the 0.2 m band holding the most pixels.
    let c = probe.centroid;
    let base = probe.axis[1].atan2(probe.axis[0]);
    let bin = 0.04f64;
    let band = (0.2 / bin).round() as usize;
    let mut best = (0usize, 0.0f64, [1.0f64, 0.0f64]);
    for k in -24i32..=24 {
        let ang = base + (k as f64 * 0.25).to_radians();
        let a = [ang.cos(), ang.sin()];
        let vs: Vec<f64> = probe.pts.iter().map(|p| -(p[0] - c[0]) * a[1] + (p[1] - c[1]) * a[0]).collect();
        let lo = vs.iter().copied().fold(f64::INFINITY, f64::min);
        let nb = ((vs.iter().copied().fold(f64::NEG_INFINITY, f64::max) - lo) / bin) as usize + 1;
        let mut hist = vec![0usize; nb + band];
        for v in &vs {
            hist[((v - lo) / bin) as usize] += 1;
        }
        let mut run: usize = hist[..band].iter().sum();
        for i in 0..nb {
            if run > best.0 {
                best = (run, lo + (i as f64 + band as f64 / 2.0) * bin, a);
            }
            run = run + hist[i + band] - hist[i];
        }
    }
    let (_, v_line, a) = best;
    // The stroke's own width: grow the band from its centre while the rows across it are at
    // least a third as full as the fullest (a 0.45 m stop line stays whole).
    let vs: Vec<f64> =
        probe.pts.iter().map(|p| -(p[0] - c[0]) * a[1] + (p[1] - c[1]) * a[0] - v_line).collect();
    let row = |v: f64| (v / gsd).round() as i64;
    // Pixel counts of the rows within 1 m of the band's centre.
    let reach = (1.0 / gsd) as i64 + 3;
    let mut rows = vec![0usize; (2 * reach + 1) as usize];
    for v in &vs {
        let r = row(*v);
        if r.abs() <= reach {
            rows[(r + reach) as usize] += 1;
        }
    }
    let full = rows.iter().copied().max().unwrap_or(0);
    let filled = |r: i64| r.abs() <= reach && 3 * rows[(r + reach) as usize] >= full;
    let (mut r_lo, mut r_hi) = (0i64, 0i64);
    while filled(r_lo - 1) && r_lo > -(1.0 / gsd) as i64 {
        r_lo -= 1;
    }
    while filled(r_hi + 1) && r_hi < (1.0 / gsd) as i64 {
        r_hi += 1;
    }
    let (line, mut rest): (Vec<usize>, Vec<usize>) =
        (0..px.len()).partition(|&i| (r_lo..=r_hi).contains(&row(vs[i])));
    // Where something crosses the line (a stop line over lane-line ends), the crossing keeps
    // its pixels on the line too, so that it is not cut in two.
    let col = |i: usize| {
        let p = probe.pts[i];
        (((p[0] - c[0]) * a[0] + (p[1] - c[1]) * a[1]) / gsd).round() as i64
    };
    let beside: std::collections::HashSet<(i64, i64)> = rest
        .iter()
        .filter(|&&i| (r_lo - 2..=r_hi + 2).contains(&row(vs[i])))
        .map(|&i| (col(i), row(vs[i])))
        .collect();
    let touches =
        |k: i64, rows: [i64; 2]| (k - 1..=k + 1).any(|kk| rows.iter().any(|&r| beside.contains(&(kk, r))));
    let crossing: Vec<usize> = line
        .iter()
        .copied()
        .filter(|&i| {
            let k = col(i);
            touches(k, [r_lo - 1, r_lo - 2]) && touches(k, [r_hi + 1, r_hi + 2])
        })
        .collect();
    rest.extend(crossing);
    let us: Vec<f64> =
        line.iter().map(|&i| (probe.pts[i][0] - c[0]) * a[0] + (probe.pts[i][1] - c[1]) * a[1]).collect();
    let extent = us.iter().copied().fold(f64::NEG_INFINITY, f64::max)
        - us.iter().copied().fold(f64::INFINITY, f64::min);
    // A real stroke fills its band: on average at least 0.1 m of paint across it.
    if extent < 2.0
        || line.len() < min_px
        || rest.len() < min_px
        || (line.len() as f64) * gsd * gsd < 0.1 * extent
    {
        return vec![px];
    }
    // Reconnect each part on its own (the line may be broken where the rim crossed it).
    let split = |idx: &[usize]| -> Vec<Vec<(usize, usize)>> {
        let sub: Vec<(usize, usize)> = idx.iter().map(|&i| px[i]).collect();
        let (x0, y0) = sub.iter().fold((usize::MAX, usize::MAX), |m, p| (m.0.min(p.0), m.1.min(p.1)));
        let (x1, y1) = sub.iter().fold((0, 0), |m, p| (m.0.max(p.0), m.1.max(p.1)));
        let (bw, bh) = (x1 - x0 + 1, y1 - y0 + 1);
        let mut cls = vec![segment::PaintClass::None; bw * bh];
        for &(x, y) in &sub {
            cls[(y - y0) * bw + x - x0] = segment::PaintClass::White;
        }
        pieces::components(&cls, bw, bh, min_px)
            .into_iter()
            .map(|(s, _)| s.into_iter().map(|(x, y)| (x + x0, y + y0)).collect())
            .collect()
    };
    let mut out = split(&line);
    out.extend(split(&rest));
    out
}

/// Mean luminance of non-paint pixels in bands 0.1–0.35 m to either side of a component's
/// principal axis: whether both are below 0.8 × the paint's mean, and whether they are alike
/// (within a factor 1.6 of each other).
fn sides_of(
    px: &[(usize, usize)],
    mask: &[segment::PaintClass],
    lum: &dyn Fn(usize, usize) -> f64,
    w: usize,
    h: usize,
    gsd: f64,
) -> Sides {
    let n = px.len() as f64;
    let (cx, cy) =
        (px.iter().map(|p| p.0 as f64).sum::<f64>() / n, px.iter().map(|p| p.1 as f64).sum::<f64>() / n);
    let (mut sxx, mut sxy, mut syy) = (0.0, 0.0, 0.0);
    for p in px {
        let (dx, dy) = (p.0 as f64 - cx, p.1 as f64 - cy);
        sxx += dx * dx;
        sxy += dx * dy;
        syy += dy * dy;
    }
    let a = 0.5 * (2.0 * sxy).atan2(sxx - syy);
    let (nx, ny) = (-a.sin(), a.cos());
    let paint = px.iter().map(|p| lum(p.0, p.1)).sum::<f64>() / n;
    let (mut side, mut cnt) = ([0.0f64; 2], [0usize; 2]);
    let inside = |x: f64, y: f64| x >= 0.0 && y >= 0.0 && (x as usize) < w && (y as usize) < h;
    let step = (px.len() / 200).max(1);
    for p in px.iter().step_by(step) {
        for (k, sgn) in [(0usize, 1.0f64), (1, -1.0)] {
            // Leave the paint across the axis, then sample the ground beyond it.
            let mut t = 0.0;
            let limit = 1.2 / gsd;
            loop {
                t += 1.0;
                let (x, y) = ((p.0 as f64 + sgn * nx * t).round(), (p.1 as f64 + sgn * ny * t).round());
                if t > limit
                    || !inside(x, y)
                    || mask[y as usize * w + x as usize] == segment::PaintClass::None
                {
                    break;
                }
            }
            let mut d = t + 0.1 / gsd;
            while d <= t + 0.35 / gsd {
                let (x, y) = ((p.0 as f64 + sgn * nx * d).round(), (p.1 as f64 + sgn * ny * d).round());
                if inside(x, y) && mask[y as usize * w + x as usize] == segment::PaintClass::None {
                    side[k] += lum(x as usize, y as usize);
                    cnt[k] += 1;
                }
                d += 1.0;
            }
        }
    }
    if cnt[0] == 0 || cnt[1] == 0 {
        // At the image border: no evidence against.
        return Sides { dark: true, alike: true };
    }
    let (l0, l1) = (side[0] / cnt[0] as f64, side[1] / cnt[1] as f64);
    Sides { dark: l0 < 0.8 * paint && l1 < 0.8 * paint, alike: l0.max(l1) < 1.6 * l0.min(l1).max(1.0) }
}

/// What the ground beside a paint component says (see [`sides_of`]).
struct Sides {
    dark: bool,
    alike: bool,
}

/// Every paint piece of an orthophoto with its shape class (for inspection and tests).
pub fn pieces_of(ortho: &Path, cfg: &LayoutConfig) -> Result<Vec<(Piece, Shape)>, LayoutError> {
    let (all, _, _) = all_pieces(ortho, cfg)?;
    Ok(all
        .into_iter()
        .map(|p| {
            let s = marks::shape_of(&p);
            (p, s)
        })
        .collect())
}

fn all_pieces(ortho: &Path, cfg: &LayoutConfig) -> Result<(Vec<Piece>, GeoRef, f64), LayoutError> {
    let r = Raster::open(ortho)?;
    if r.info.bands.len() < 3 {
        return Err(io_input(ortho, format!("{} bands; an RGB orthophoto is needed", r.info.bands.len())));
    }
    let georef = r.georef()?;
    let gsd = (georef.geo_transform[1].powi(2) + georef.geo_transform[4].powi(2)).sqrt();
    let gsd_m = r.info.gsd_m.unwrap_or(gsd);
    let (w, h) = (r.info.width, r.info.height);
    let t = cfg.tile_px.max(256);
    let ov = (cfg.tile_overlap_m / gsd_m).ceil() as usize;
    let mut jobs = Vec::new();
    for r0 in (0..h).step_by(t) {
        for c0 in (0..w).step_by(t) {
            let core = [c0, r0, (c0 + t).min(w), (r0 + t).min(h)];
            let (wc0, wr0) = (c0.saturating_sub(ov), r0.saturating_sub(ov));
            let (wc1, wr1) = ((core[2] + ov).min(w), (core[3] + ov).min(h));
            jobs.push((Window { col: wc0, row: wr0, width: wc1 - wc0, height: wr1 - wr0 }, core));
        }
    }
    let seg: Box<dyn Segmenter> = match cfg.segmenter {
        config::SegmenterKind::Classical => Box::new(segment::Classical { cfg: cfg.clone() }),
        config::SegmenterKind::Learned => {
            let Some(m) = &cfg.model else {
                return Err(io_input(ortho, "segmenter = \"learned\" needs a model (weights path)"));
            };
            Box::new(learned::Learned::load(m)?)
        }
    };
    let per_tile: Vec<Result<Vec<Piece>, LayoutError>> = jobs
        .par_iter()
        .map(|(win, core)| tile_pieces(ortho, seg.as_ref(), &georef, gsd_m, *win, *core))
        .collect();
    let mut all = Vec::new();
    for p in per_tile {
        all.extend(p?);
    }
    Ok((all, georef, gsd_m))
}

fn find(ortho: &Path, cfg: &LayoutConfig, heights: &Heights) -> Result<(Findings, GeoRef, f64), LayoutError> {
    let (all, georef, gsd_m) = all_pieces(ortho, cfg)?;
    let all = with_support(all, cfg);
    // Crosswalk stripes first (in shadow a stripe may look as thin as a line), from every
    // elongated white piece; the rest by shape.
    let shapes: Vec<Shape> = all.iter().map(marks::shape_of).collect();
    let elongated: Vec<usize> = (0..all.len())
        .filter(|&i| matches!(shapes[i], Shape::Line | Shape::Bar) && all[i].yellow <= 0.5)
        .collect();
    let refs: Vec<&Piece> = elongated.iter().map(|&i| &all[i]).collect();
    let (crosswalks, stop_cands, used) = marks::crosswalks_and_stop_lines_used(&refs, gsd_m);
    let mut is_stripe_or_bar = vec![false; all.len()];
    for (k, &i) in elongated.iter().enumerate() {
        if used[k] || shapes[i] == Shape::Bar {
            is_stripe_or_bar[i] = true;
        }
    }
    let mut line_pieces = Vec::new();
    let mut arrows = Vec::new();
    for (i, p) in all.iter().enumerate() {
        if is_stripe_or_bar[i] && p.yellow <= 0.5 {
            continue;
        }
        match shapes[i] {
            Shape::Line => line_pieces.push(lines::LinePiece {
                line: p.centerline(0.5),
                yellow: p.yellow > 0.5,
                width: p.width,
                double: false,
            }),
            Shape::Bar if p.yellow > 0.5 => line_pieces.push(lines::LinePiece {
                line: p.centerline(0.5),
                yellow: true,
                width: p.width,
                double: true,
            }),
            Shape::Bar => {}
            Shape::Blob => {
                if let Some(a) = marks::recognise_arrow(p, gsd_m) {
                    arrows.push(a);
                }
            }
            Shape::Other => {
                if p.yellow <= 0.5
                    && marks::arrow_sized(p)
                    && let Some(a) = marks::recognise_arrow(p, gsd_m)
                {
                    arrows.push(a);
                }
            }
        }
    }
    let mut barriers: Vec<(P2, P2)> =
        stop_cands.iter().map(|s| (s.points[0], s.points[s.points.len() - 1])).collect();
    for c in &crosswalks {
        for k in 0..c.polygon.len() {
            barriers.push((c.polygon[k], c.polygon[(k + 1) % c.polygon.len()]));
        }
    }
    let mut boundaries =
        lines::merge_doubles(lines::boundaries(lines::pair_doubles(line_pieces), &barriers, cfg));
    for b in &mut boundaries {
        b.points = geom::simplify(&b.points, cfg.simplify_m);
    }
    let ends: Vec<marks::LineEnd> = boundaries
        .iter()
        .filter(|b| b.points.len() >= 2)
        .flat_map(|b| {
            let yellow = b.color == hdmap_core::MarkingColor::Yellow;
            // Each end with the direction into the line over its last 2 m.
            let end =
                |pts: Vec<P2>| marks::LineEnd { at: pts[0], dir: geom::end_heading(&pts, true, 2.0), yellow };
            [end(b.points.clone()), end(b.points.iter().rev().copied().collect())]
        })
        .collect();
    let polylines: Vec<&[P2]> = boundaries.iter().map(|b| b.points.as_slice()).collect();
    let stops = marks::confirm_stop_lines(&stop_cands, &ends, &polylines);
    let mut crosswalks = crosswalks;
    for c in &mut crosswalks {
        marks::snap_crosswalk_to_edge_lines(c, &polylines);
    }
    // Arrows point along their lane: the nearest lane line within 4 m runs within 10° of the
    // arrow (a lit gap between shadows across the road or on the sidewalk does not).
    arrows.retain(|a| {
        let c = geom::polygon_centroid(&a.polygon);
        let near = boundaries
            .iter()
            .flat_map(|b| b.points.windows(2))
            .map(|s| (geom::seg_dist(c, s[0], s[1]).0, geom::unit(geom::sub(s[1], s[0]))))
            .min_by(|x, y| x.0.total_cmp(&y.0));
        near.is_some_and(|(d, dir)| d < 4.0 && geom::dot(dir, a.direction).abs() > 0.985)
    });
    let stop_lines: Vec<&[P2]> = stops.iter().map(|s| s.points.as_slice()).collect();
    arrows.retain(|a| !arrow_rows::turned_round(a, &stop_lines));
    // Arrows read from their row: under parked cars (the DSM tells what is hidden), or joined
    // to their lane line.
    let lane_lines: Vec<arrow_rows::LaneLine<'_>> = boundaries
        .iter()
        .map(|b| arrow_rows::LaneLine {
            points: &b.points,
            yellow: b.color == hdmap_core::MarkingColor::Yellow,
        })
        .collect();
    let dsm: Option<&dyn arrow_rows::Surface> = heights.raster.is_some().then_some(heights);
    // A slot reads paint from the pieces and from the raw contrast mask. The piece filters
    // (size, dark ground on both sides, a line in line) tell marks from clutter anywhere, but
    // a fragment beside a car has the car on one side and may be a few pixels; in a slot the
    // glyph fit tells them apart. With the U-Net, the contrast mask also has what the net
    // leaves out beside a car (the tip of a head).
    let (raster, classical) = (Raster::open(ortho)?, segment::Classical { cfg: cfg.clone() });
    let contrast = |corners: [P2; 4]| contrast_paint(&raster, &classical, &georef, gsd_m, corners);
    // (The slots work on the pixel lattice of a north-up orthophoto with square pixels.)
    let g = &georef.geo_transform;
    let north_up = g[2] == 0.0 && g[4] == 0.0 && (g[1].abs() - g[5].abs()).abs() < 1e-6 * g[1].abs();
    if north_up {
        let read =
            arrow_rows::arrows_in_rows(&arrows, &lane_lines, &stop_lines, &all, Some(&contrast), gsd_m, dsm);
        // A fragment of an arrow taken for a short line (the end of its shaft) is the arrow's.
        boundaries.retain(|b| {
            !read.iter().any(|a| b.points.iter().all(|&p| geom::polygon_dist(p, &a.polygon) < 0.3))
        });
        arrows.extend(read);
    }
    let graph = lanes::lanes(&boundaries, &stops, &arrows, cfg);
    Ok((Findings { boundaries, stops, crosswalks, arrows, graph }, georef, gsd_m))
}

/// Bands 1–3 of a window, interleaved RGB.
fn read_rgb(r: &Raster, win: Window) -> Result<Vec<u8>, LayoutError> {
    let bands: Vec<Vec<u8>> = (1..=3).map(|b| r.read_window::<u8>(b, win)).collect::<Result<_, _>>()?;
    let mut rgb = Vec::with_capacity(win.width * win.height * 3);
    for ((r, g), b) in bands[0].iter().zip(&bands[1]).zip(&bands[2]).take(win.width * win.height) {
        rgb.extend([*r, *g, *b]);
    }
    Ok(rgb)
}

/// The classical segmenter's paint (pixel centres) in the box of `corners`, read from the
/// orthophoto `r` with a margin for its background filter; none where the read fails.
fn contrast_paint(
    r: &Raster,
    classical: &segment::Classical,
    georef: &GeoRef,
    gsd: f64,
    corners: [P2; 4],
) -> Vec<P2> {
    let margin = (classical.cfg.stroke_max_m / gsd).ceil() + 2.0;
    let px: Vec<[f64; 2]> = corners.iter().map(|c| georef.world_to_pixel(c[0], c[1])).collect();
    let lo = |k: usize| (px.iter().map(|p| p[k]).fold(f64::INFINITY, f64::min) - margin).floor().max(0.0);
    let hi = |k: usize, n: usize| {
        (px.iter().map(|p| p[k]).fold(f64::NEG_INFINITY, f64::max) + margin).ceil().min(n as f64)
    };
    let (c0, r0, c1, r1) = (lo(0), lo(1), hi(0, r.info.width), hi(1, r.info.height));
    if c1 <= c0 || r1 <= r0 {
        return Vec::new();
    }
    let win =
        Window { col: c0 as usize, row: r0 as usize, width: (c1 - c0) as usize, height: (r1 - r0) as usize };
    let Ok(rgb) = read_rgb(r, win) else { return Vec::new() };
    let mask = classical.segment(&RgbTile { w: win.width, h: win.height, rgb: &rgb }, gsd);
    mask.iter()
        .enumerate()
        .filter(|(_, c)| **c != segment::PaintClass::None)
        .map(|(i, _)| {
            georef.pixel_to_world(
                (win.col + i % win.width) as f64 + 0.5,
                (win.row + i / win.width) as f64 + 0.5,
            )
        })
        .collect()
}

/// Pieces whose two sides differ (see `tile_pieces`) are kept only when they are line pieces
/// with another line piece in line with them (a dash of a dashed line along a shadow's edge,
/// within one dash gap plus a dash): an isolated bright stroke between two different surfaces
/// is a roof's or a kerb's edge.
fn with_support(all: Vec<Piece>, cfg: &LayoutConfig) -> Vec<Piece> {
    let lines: Vec<&Piece> = all.iter().filter(|p| marks::shape_of(p) == Shape::Line).collect();
    let reach = cfg.max_dash_gap_m + 6.0;
    let supported = |p: &Piece| {
        marks::shape_of(p) == Shape::Line
            && lines.iter().any(|q| {
                let d = geom::sub(p.centroid, q.centroid);
                let along = geom::dot(d, p.axis).abs();
                geom::dot(p.axis, q.axis).abs() > 0.995
                    && (0.5..=reach).contains(&along)
                    && geom::cross(p.axis, d).abs() <= cfg.chain_lateral_m
            })
    };
    let keep: Vec<bool> = all.iter().map(|p| !p.unlike_sides || supported(p)).collect();
    all.into_iter().zip(keep).filter_map(|(p, k)| k.then_some(p)).collect()
}

impl arrow_rows::Surface for Heights {
    fn z_at(&self, p: P2) -> Option<f64> {
        self.at(p)
    }
    fn lowest_within(&self, p: P2, radius_m: f64) -> Option<f64> {
        self.min_within(p, radius_m)
    }
}

/// Heights: the lowest DSM value within 0.6 m (cars and canopy over the road are higher than
/// the paint), or within 2.5 m where that is still a car; `None` without a DSM.
struct Heights {
    raster: Option<(GeoRef, usize, usize, Vec<f32>)>,
}

impl Heights {
    fn new(dsm: Option<&Path>) -> Result<Self, LayoutError> {
        let Some(p) = dsm else { return Ok(Self { raster: None }) };
        let r = Raster::open(p)?;
        let g = r.georef()?;
        let (w, h) = (r.info.width, r.info.height);
        let data: Vec<f32> = r.read_window(1, Window { col: 0, row: 0, width: w, height: h })?;
        Ok(Self { raster: Some((g, w, h, data)) })
    }

    fn z(&self, p: P2) -> Option<f64> {
        let near = self.min_within(p, 0.6)?;
        // A vertex bridged under a car (or canopy) sees only the car within 0.6 m: then the
        // lowest surface within 2.5 m is the road (a 2 % crossfall moves it 5 cm at most).
        let wide = self.min_within(p, 2.5)?;
        Some(if near - wide > 0.3 { wide } else { near })
    }

    /// Points strictly between `a` and `b` where the ground's height departs from the straight
    /// line between its neighbours by more than `tolerance_m`: the DSM sampled every `step_m`,
    /// its height profile simplified (Douglas–Peucker on distance along the segment and height).
    /// Without heights at both ends, none.
    fn profile(&self, a: P2, b: P2, step_m: f64, tolerance_m: f64) -> Vec<Point3<f64>> {
        use geo::Simplify;
        let len = geom::norm(geom::sub(a, b));
        let n = (len / step_m).ceil() as usize;
        if n < 2 {
            return Vec::new();
        }
        let at = |k: usize| {
            let t = k as f64 / n as f64;
            [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t]
        };
        // Samples without a height (outside the DSM) are skipped.
        let prof: Vec<(f64, f64)> =
            (0..=n).filter_map(|k| self.z(at(k)).map(|z| (k as f64 * len / n as f64, z))).collect();
        if prof.len() < 3 || prof[0].0 > 0.0 || prof[prof.len() - 1].0 < len {
            return Vec::new();
        }
        let kept = geo::LineString::from(prof).simplify(tolerance_m);
        let inner = &kept.0[1..kept.0.len() - 1];
        inner
            .iter()
            .map(|c| {
                let t = c.x / len;
                Point3::new(a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, c.y)
            })
            .collect()
    }

    /// The DSM's value in the cell holding `p`.
    fn at(&self, p: P2) -> Option<f64> {
        let (g, w, h, d) = self.raster.as_ref()?;
        let c = g.world_to_pixel(p[0], p[1]);
        let (x, y) = (c[0].floor(), c[1].floor());
        if x < 0.0 || y < 0.0 || x as usize >= *w || y as usize >= *h {
            return None;
        }
        let v = d[y as usize * w + x as usize] as f64;
        v.is_finite().then_some(v)
    }

    fn min_within(&self, p: P2, radius_m: f64) -> Option<f64> {
        let (g, w, h, d) = self.raster.as_ref()?;
        let cell = (g.geo_transform[1].powi(2) + g.geo_transform[4].powi(2)).sqrt();
        let k = ((radius_m / cell).ceil() as i64).max(1);
        let c = g.world_to_pixel(p[0], p[1]);
        let (ci, ri) = (c[0].floor() as i64, c[1].floor() as i64);
        let mut best = f64::INFINITY;
        for dr in -k..=k {
            for dc in -k..=k {
                let (x, y) = (ci + dc, ri + dr);
                if (dr * dr + dc * dc) as f64 * cell * cell > radius_m * radius_m + cell * cell {
                    continue;
                }
                if x >= 0 && y >= 0 && (x as usize) < *w && (y as usize) < *h {
                    let v = d[y as usize * w + x as usize] as f64;
                    if v.is_finite() {
                        best = best.min(v);
                    }
                }
            }
        }
        best.is_finite().then_some(best)
    }
}

/// Extracts the road layout of an orthophoto (RGB GeoTIFF with an EPSG CRS). Heights come from
/// `dsm` (a raster in the same CRS); without one every z is 0 and an issue says so. The layout's
/// origin is the orthophoto's top-left corner at height 0 in `vertical_datum`.
pub fn extract_layout(
    ortho: &Path,
    dsm: Option<&Path>,
    vertical_datum: VerticalDatum,
    cfg: &LayoutConfig,
    issues: &mut Issues,
) -> Result<RoadLayout, LayoutError> {
    cfg.validate().map_err(|message| LayoutError::Input { path: "[layout]".into(), message })?;
    // Lengths are metres throughout: an orthophoto in longitude / latitude is reprojected to
    // its UTM zone first (the layout is then in that CRS, and an issue says so).
    let named = ortho.display().to_string();
    let _tmp;
    let (ortho, dsm) = {
        let r = Raster::open(ortho)?;
        let g = r.georef()?;
        if hdmap_io::raster::is_geographic(&g.crs) {
            let c = g.pixel_to_world(r.info.width as f64 / 2.0, r.info.height as f64 / 2.0);
            let epsg = hdmap_io::raster::utm_epsg(c[0], c[1]);
            let gsd = r.info.gsd_m.ok_or_else(|| io_input(ortho, "no ground sample distance"))?;
            let dir =
                tempfile::tempdir().map_err(|e| io_input(ortho, format!("temporary directory: {e}")))?;
            let o = dir.path().join("ortho_utm.tif");
            hdmap_io::raster::warp(ortho, &o, epsg, gsd)?;
            let d = match dsm {
                Some(d) => {
                    let rd = Raster::open(d)?;
                    if hdmap_io::raster::is_geographic(&rd.georef()?.crs) {
                        return Err(io_input(
                            d,
                            "a geographic DSM is not supported; reproject it to the orthophoto's UTM zone",
                        ));
                    }
                    Some(d.to_path_buf())
                }
                None => None,
            };
            issues.warn(
                ortho.display().to_string(),
                format!("geographic CRS {}: reprojected to EPSG:{epsg} (UTM) at {gsd:.3} m; the layout is in EPSG:{epsg}", g.crs),
            );
            _tmp = Some(dir);
            (o, d)
        } else {
            _tmp = None;
            (ortho.to_path_buf(), dsm.map(Path::to_path_buf))
        }
    };
    let (ortho, dsm) = (ortho.as_path(), dsm.as_deref());
    let heights = Heights::new(dsm)?;
    let (f, georef, _gsd) = find(ortho, cfg, &heights)?;
    let epsg = georef.crs.epsg().ok_or_else(|| {
        io_input(ortho, format!("CRS {} has no EPSG code; the layout needs one", georef.crs))
    })?;
    let origin =
        GeoOrigin::new(epsg, [georef.geo_transform[0], georef.geo_transform[3], 0.0], vertical_datum)
            .map_err(|e| io_input(ortho, e.to_string()))?;
    if dsm.is_none() {
        issues.warn(named.clone(), "no DSM: every height is 0");
    }
    let mut missing_z = 0usize;
    let mut lift = |pts: &[P2]| -> Vec<Point3<f64>> {
        let mut out = Vec::with_capacity(pts.len());
        for (k, p) in pts.iter().enumerate() {
            let z = heights.z(*p);
            if z.is_none() && dsm.is_some() {
                missing_z += 1;
            }
            out.push(Point3::new(p[0], p[1], z.unwrap_or(0.0)));
            if let Some(&q) = pts.get(k + 1) {
                out.extend(heights.profile(*p, q, cfg.height_step_m, cfg.height_tolerance_m));
            }
        }
        out
    };
    let mut layout = RoadLayout::new(origin);
    let mut next = 0u64;
    let mut id = || {
        next += 1;
        ElementId(next)
    };
    let all_bounds: Vec<&lines::FoundBoundary> =
        f.boundaries.iter().chain(f.graph.virtual_boundaries.iter()).collect();
    let bids: Vec<ElementId> = all_bounds.iter().map(|_| id()).collect();
    for (b, bid) in all_bounds.iter().zip(&bids) {
        layout.lane_boundaries.push(LaneBoundary {
            id: *bid,
            line_type: b.line_type,
            color: b.color,
            width_m: b.width_m,
            dash: b.dash,
            points: lift(&b.points),
        });
    }
    if cfg.roads.enabled {
        let gsd = (georef.geo_transform[1].powi(2) + georef.geo_transform[4].powi(2)).sqrt();
        for line in roads::road_centerlines(ortho, &georef, gsd, &cfg.roads)? {
            let cid = id();
            layout.road_centerlines.push(hdmap_core::RoadCenterline { id: cid, points: lift(&line) });
        }
    }
    let sids: Vec<ElementId> = f.stops.iter().map(|_| id()).collect();
    for (s, sid) in f.stops.iter().zip(&sids) {
        layout.stop_lines.push(StopLine { id: *sid, width_m: s.width_m, points: lift(&s.points) });
    }
    for c in &f.crosswalks {
        let cid = id();
        layout.crosswalks.push(Crosswalk {
            id: cid,
            polygon: lift(&c.polygon),
            stripe_m: c.stripe_m,
            gap_m: c.gap_m,
        });
    }
    for a in &f.arrows {
        let aid = id();
        layout.surface_marks.push(SurfaceMark {
            id: aid,
            kind: MarkKind::Arrow(a.kind),
            polygon: lift(&a.polygon),
        });
    }
    let lids: Vec<ElementId> = f.graph.lanes.iter().map(|_| id()).collect();
    for (l, lid) in f.graph.lanes.iter().zip(&lids) {
        layout.lanes.push(Lane {
            id: *lid,
            left: BoundaryRef { id: bids[l.left.0], reversed: l.left.1 },
            right: BoundaryRef { id: bids[l.right.0], reversed: l.right.1 },
            center_line: lift(&l.center),
            successors: l.successors.iter().map(|&j| lids[j]).collect(),
            left_neighbour: l.left_neighbour.map(|j| lids[j]),
            right_neighbour: l.right_neighbour.map(|j| lids[j]),
            stop_line: l.stop_line.map(|s| sids[s]),
            in_intersection: l.in_intersection,
            kind: hdmap_core::LaneKind::Road,
            bidirectional: false,
        });
    }
    if missing_z > 0 {
        issues.warn(named.clone(), format!("{missing_z} vertices outside the DSM: height 0"));
    }
    layout.validate(issues);
    Ok(layout)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdmap_core::ArrowKind;

    const GSD: f64 = 0.08;

    /// A white mask of `w × h` pixels with every pixel whose centre (x right, y down, metres)
    /// satisfies one of `shapes`.
    fn mask_of(w: usize, h: usize, shapes: &[&dyn Fn(f64, f64) -> bool]) -> Vec<segment::PaintClass> {
        (0..w * h)
            .map(|i| {
                let (x, y) = (((i % w) as f64 + 0.5) * GSD, ((i / w) as f64 + 0.5) * GSD);
                if shapes.iter().any(|s| s(x, y)) {
                    segment::PaintClass::White
                } else {
                    segment::PaintClass::None
                }
            })
            .collect()
    }

    /// World coordinates as in an orthophoto: north (world y) is up, image rows go down.
    fn piece_of(px: &[(usize, usize)]) -> Piece {
        Piece::new(
            px.iter().map(|&(x, y)| [(x as f64 + 0.5) * GSD, -(y as f64 + 0.5) * GSD]).collect(),
            0.0,
            GSD,
        )
    }

    fn one_component(mask: &[segment::PaintClass], w: usize, h: usize) -> Vec<(usize, usize)> {
        let comps = pieces::components(mask, w, h, 3);
        assert_eq!(comps.len(), 1, "the test scene is one connected component");
        comps.into_iter().next().map(|(px, _)| px).unwrap_or_default()
    }

    #[test]
    fn an_arrow_touching_its_lane_line_is_split_into_the_line_and_the_arrow() {
        let (w, h) = (300, 60);
        // A straight-right arrow pointing +x (its right turn reaches toward +y on screen), its
        // right head's tip touching a lane line (as drawn when a lane is narrow).
        let glyph = hdmap_core::layout::arrow_glyph(ArrowKind::StraightRight);
        let v_max = glyph.iter().map(|p| -p[1]).fold(f64::NEG_INFINITY, f64::max);
        let (x0, y0) = (8.0, 2.0);
        let in_arrow = |x: f64, y: f64| geom::in_polygon([x - x0, -(y - y0)], &glyph);
        let line_y = y0 + v_max + 0.1;
        let in_line = |x: f64, y: f64| (y - line_y).abs() <= 0.12 && (1.0..23.0).contains(&x);
        let mask = mask_of(w, h, &[&in_arrow, &in_line]);
        let px = one_component(&mask, w, h);
        assert_eq!(marks::shape_of(&piece_of(&px)), Shape::Other, "joined, neither a line nor an arrow");
        let parts = split_if_mixed(px, 0.0, &mask, w, GSD, 3);
        let pieces: Vec<Piece> = parts.iter().map(|(p, _)| piece_of(p)).collect();
        assert!(
            pieces.iter().any(|p| marks::shape_of(p) == Shape::Line && p.length > 21.0),
            "the whole lane line: {pieces:?}"
        );
        let arrows: Vec<marks::FoundArrow> =
            pieces.iter().filter_map(|p| marks::recognise_arrow(p, GSD)).collect();
        assert_eq!(arrows.len(), 1, "{pieces:?}");
        assert_eq!(arrows[0].kind, ArrowKind::StraightRight);
        assert!(arrows[0].direction[0] > 0.999, "points +x: {:?}", arrows[0].direction);
    }

    #[test]
    fn a_stop_line_over_lane_line_ends_stays_whole() {
        let (w, h) = (200, 150);
        // A 0.6 m stop line from y = 1 m to 10 m at x = 12 m; three lane lines end on it.
        let in_stop = |x: f64, y: f64| (x - 12.0).abs() <= 0.3 && (1.0..10.0).contains(&y);
        let in_lines = |x: f64, y: f64| {
            (1.0..12.0).contains(&x) && [3.0, 5.5, 8.0].iter().any(|ly| (y - ly).abs() <= 0.12)
        };
        let mask = mask_of(w, h, &[&in_stop, &in_lines]);
        let px = one_component(&mask, w, h);
        let parts = split_if_mixed(px, 0.0, &mask, w, GSD, 3);
        let pieces: Vec<Piece> = parts.iter().map(|(p, _)| piece_of(p)).collect();
        let bars: Vec<&Piece> = pieces.iter().filter(|p| marks::shape_of(p) == Shape::Bar).collect();
        assert_eq!(bars.len(), 1, "{pieces:?}");
        assert!((bars[0].length - 9.0).abs() < 0.2, "the whole stop line: {:?}", bars[0]);
        let lines = pieces.iter().filter(|p| marks::shape_of(p) == Shape::Line && p.length > 10.0).count();
        assert_eq!(lines, 3, "{pieces:?}");
    }

    #[test]
    fn a_lane_line_with_a_light_car_roof_grown_on_is_peeled() {
        let (w, h) = (320, 60);
        // A 24 m line as wide as blur makes it (0.4 m), and a light car roof (4.4 × 1.8 m)
        // touching it: both survive the opening, so only peeling separates them.
        let in_line = |x: f64, y: f64| (y - 1.0).abs() <= 0.2 && (0.5..24.5).contains(&x);
        let in_roof = |x: f64, y: f64| (15.0..19.4).contains(&x) && (1.0..2.8).contains(&y);
        let mask = mask_of(w, h, &[&in_line, &in_roof]);
        let px = one_component(&mask, w, h);
        let parts = split_if_mixed(px, 0.0, &mask, w, GSD, 3);
        let pieces: Vec<Piece> = parts.iter().map(|(p, _)| piece_of(p)).collect();
        let line = pieces.iter().find(|p| marks::shape_of(p) == Shape::Line && p.length > 23.5);
        assert!(line.is_some_and(|l| (l.centroid[1] + 1.0).abs() < 0.05), "{pieces:?}");
    }

    #[test]
    fn strokes_between_unlike_sides_need_a_line_in_line_with_them() {
        let cfg = LayoutConfig::default();
        let dash = |x0: f64, y: f64, unlike: bool| {
            let pts: Vec<P2> = (0..40)
                .flat_map(|i| (0..3).map(move |j| [x0 + i as f64 * GSD, y + j as f64 * GSD]))
                .collect();
            let mut p = Piece::new(pts, 0.0, GSD);
            p.unlike_sides = unlike;
            p
        };
        // A dashed line along a shadow's edge (every dash unlike), an isolated roof edge, and
        // an ordinary isolated stall line.
        let pieces = vec![
            dash(0.0, 0.0, true),
            dash(8.0, 0.0, true),
            dash(16.0, 0.0, true),
            dash(0.0, 20.0, true),
            dash(40.0, 40.0, false),
        ];
        assert!(pieces.iter().all(|p| marks::shape_of(p) == Shape::Line));
        let kept = with_support(pieces, &cfg);
        let ys: Vec<(f64, f64)> =
            kept.iter().map(|p| (p.centroid[0].round(), p.centroid[1].round())).collect();
        assert_eq!(ys, vec![(2.0, 0.0), (10.0, 0.0), (18.0, 0.0), (42.0, 40.0)]);
    }

    #[test]
    fn heights_follow_a_crest_between_far_apart_vertices() {
        // A DSM (0.5 m cells) of a road over a crest: z = 30 − 0.0002 (x − 100)², 2 m higher
        // in the middle than at the ends of a 200 m straight line with two vertices.
        let (w, h) = (420, 40);
        let truth = |x: f64| 30.0 - 0.0002 * (x - 100.0).powi(2);
        let data: Vec<f32> = (0..w * h).map(|i| truth(-5.0 + (i % w) as f64 * 0.5 + 0.25) as f32).collect();
        let georef =
            GeoRef { geo_transform: [-5.0, 0.5, 0.0, 10.0, 0.0, -0.5], crs: hdmap_core::Crs::Epsg(5186) };
        let heights = Heights { raster: Some((georef, w, h, data)) };
        let (a, b) = ([0.0, 0.0], [200.0, 0.0]);
        let mut line = vec![[a[0], a[1], heights.z(a).unwrap_or(f64::NAN)]];
        line.extend(heights.profile(a, b, 1.0, 0.02).iter().map(|p| [p.x, p.y, p.z]));
        line.push([b[0], b[1], heights.z(b).unwrap_or(f64::NAN)]);
        assert!(line.len() > 2, "vertices are added along the crest");
        assert!(line.iter().all(|p| p[1] == 0.0), "the added vertices lie on the line");
        // Along the line, every 0.25 m: within the tolerance plus what taking the lowest cell
        // within 0.6 m costs on a 4 % slope (2.4 cm).
        let mut worst: f64 = 0.0;
        for s in line.windows(2) {
            for k in 0..40 {
                let t = k as f64 / 40.0;
                let (x, z) = (s[0][0] + (s[1][0] - s[0][0]) * t, s[0][2] + (s[1][2] - s[0][2]) * t);
                worst = worst.max((z - truth(x)).abs());
            }
        }
        assert!(worst < 0.05, "height error along the line {worst:.3} m");
    }
}
