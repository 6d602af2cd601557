//! Road centre lines from the road surface: the road-level network even where the imagery is
//! too coarse for lane markings (30 cm satellite tiles).
//!
//! The orthophoto is averaged into ~0.5 m cells; pavement is the darker of the neutral
//! (colourless) surfaces (Otsu's threshold on the luminance of neutral cells); a closing fills
//! paint and vehicles, an opening drops thin dark strokes; components smaller than
//! `min_area_m2` go. The mask is thinned (Zhang–Suen) to a one-cell skeleton, traced into
//! polylines between junctions and ends, and spurs shorter than `min_spur_m` are pruned.

use hdmap_io::raster::{GeoRef, Raster, Window};

use crate::LayoutError;
use crate::geom::P2;

/// Settings (part of [`crate::LayoutConfig`]).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RoadConfig {
    /// Extract road centre lines at all.
    pub enabled: bool,
    /// Cell size of the road mask, m.
    pub cell_m: f64,
    /// Largest chroma ((max − min) / max of RGB) of pavement.
    pub max_chroma: f64,
    /// Closing radius (fills paint and vehicles), m.
    pub close_m: f64,
    /// Opening radius (removes dark strokes narrower than a lane), m.
    pub open_m: f64,
    /// Smallest road component, m².
    pub min_area_m2: f64,
    /// Dead-end branches shorter than this are pruned, m.
    pub min_spur_m: f64,
}

impl Default for RoadConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            cell_m: 0.5,
            max_chroma: 0.2,
            close_m: 1.5,
            open_m: 2.0,
            min_area_m2: 400.0,
            min_spur_m: 15.0,
        }
    }
}

/// Road centre lines (CRS coordinates) of an orthophoto.
#[allow(clippy::needless_range_loop)] // band b indexes the raster band and the RGB channel
pub fn road_centerlines(
    ortho: &std::path::Path,
    georef: &GeoRef,
    gsd: f64,
    cfg: &RoadConfig,
) -> Result<Vec<Vec<P2>>, LayoutError> {
    let r = Raster::open(ortho)?;
    let (w, h) = (r.info.width, r.info.height);
    let k = ((cfg.cell_m / gsd).round() as usize).max(1);
    let cell = k as f64 * gsd;
    let (cw, ch) = (w / k, h / k);
    if cw < 8 || ch < 8 {
        return Ok(Vec::new());
    }
    // Block means of R, G, B, read band of rows by band of rows.
    let mut rgb = vec![[0f32; 3]; cw * ch];
    let rows_per = (4096 / k).max(1) * k;
    for r0 in (0..ch * k).step_by(rows_per) {
        let hh = rows_per.min(ch * k - r0);
        let win = Window { col: 0, row: r0, width: cw * k, height: hh };
        for b in 0..3 {
            let data: Vec<u8> = r.read_window(b + 1, win)?;
            for y in 0..hh {
                let cy = (r0 + y) / k;
                for cx in 0..cw {
                    let s: u32 =
                        data[y * cw * k + cx * k..y * cw * k + cx * k + k].iter().map(|&v| v as u32).sum();
                    rgb[cy * cw + cx][b] += s as f32 / (k * k) as f32;
                }
            }
        }
    }
    let lum: Vec<f32> = rgb.iter().map(|p| 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2]).collect();
    let neutral: Vec<bool> = rgb
        .iter()
        .map(|p| {
            let mx = p[0].max(p[1]).max(p[2]);
            let mn = p[0].min(p[1]).min(p[2]);
            ((mx - mn) / mx.max(1.0)) as f64 <= cfg.max_chroma && mx > 8.0
        })
        .collect();
    let t = otsu(lum.iter().zip(&neutral).filter(|(_, n)| **n).map(|(l, _)| *l));
    let mut mask: Vec<bool> = (0..cw * ch).map(|i| neutral[i] && lum[i] < t).collect();
    let rc = ((cfg.close_m / cell).round() as usize).max(1);
    let ro = ((cfg.open_m / cell).round() as usize).max(1);
    mask = erode(&dilate(&mask, cw, ch, rc), cw, ch, rc);
    mask = dilate(&erode(&mask, cw, ch, ro), cw, ch, ro);
    let min_cells = (cfg.min_area_m2 / (cell * cell)).ceil() as usize;
    mask = drop_small(&mask, cw, ch, min_cells);
    let skel = unstair(thin(mask, cw, ch), cw, ch);
    let min_spur = (cfg.min_spur_m / cell).ceil() as usize;
    let lines = trace(&skel, cw, ch, min_spur);
    // Links inside a junction's knot of cells are not roads.
    let lines = join_through(lines.into_iter().filter(|l| l.len() >= 4).collect());
    Ok(lines
        .into_iter()
        .map(|l| {
            let pts: Vec<P2> = l
                .iter()
                .map(|&(x, y)| {
                    georef.pixel_to_world((x * k) as f64 + k as f64 / 2.0, (y * k) as f64 + k as f64 / 2.0)
                })
                .collect();
            crate::geom::simplify(&smooth(&pts), cell * 0.5)
        })
        .filter(|l| l.len() >= 2)
        .collect())
}

/// Otsu's threshold of values in 0..=255.
fn otsu(values: impl Iterator<Item = f32>) -> f32 {
    let mut hist = [0f64; 256];
    let mut n = 0.0;
    for v in values {
        hist[v.clamp(0.0, 255.0) as usize] += 1.0;
        n += 1.0;
    }
    if n == 0.0 {
        return 0.0;
    }
    let total: f64 = hist.iter().enumerate().map(|(i, c)| i as f64 * c).sum();
    let (mut w0, mut s0, mut best, mut best_t) = (0.0, 0.0, -1.0, 0usize);
    for (t, c) in hist.iter().enumerate() {
        w0 += c;
        s0 += t as f64 * c;
        let w1 = n - w0;
        if w0 == 0.0 || w1 == 0.0 {
            continue;
        }
        let (m0, m1) = (s0 / w0, (total - s0) / w1);
        let between = w0 * w1 * (m0 - m1) * (m0 - m1);
        if between > best {
            best = between;
            best_t = t;
        }
    }
    best_t as f32 + 0.5
}

fn morph(m: &[bool], w: usize, h: usize, r: usize, dilate: bool) -> Vec<bool> {
    // Separable square structuring element via running counts.
    let pass = |src: &[bool], horizontal: bool| -> Vec<bool> {
        let mut out = vec![false; w * h];
        let (n_outer, n_inner) = if horizontal { (h, w) } else { (w, h) };
        for o in 0..n_outer {
            let idx = |i: usize| if horizontal { o * w + i } else { i * w + o };
            let mut count = 0usize;
            let mut len = 0usize;
            // Window [i − r, i + r].
            for i in 0..n_inner + r {
                if i < n_inner {
                    count += src[idx(i)] as usize;
                    len += 1;
                }
                if i > 2 * r && i - (2 * r + 1) < n_inner {
                    count -= src[idx(i - (2 * r + 1))] as usize;
                    len -= 1;
                }
                if i >= r {
                    let c = i - r;
                    out[idx(c)] = if dilate { count > 0 } else { count == len };
                }
            }
        }
        out
    };
    pass(&pass(m, true), false)
}

fn dilate(m: &[bool], w: usize, h: usize, r: usize) -> Vec<bool> {
    morph(m, w, h, r, true)
}

fn erode(m: &[bool], w: usize, h: usize, r: usize) -> Vec<bool> {
    morph(m, w, h, r, false)
}

fn drop_small(m: &[bool], w: usize, h: usize, min: usize) -> Vec<bool> {
    let mut out = vec![false; w * h];
    let mut seen = vec![false; w * h];
    let mut stack = Vec::new();
    for s in 0..w * h {
        if !m[s] || seen[s] {
            continue;
        }
        let mut comp = Vec::new();
        seen[s] = true;
        stack.push(s);
        while let Some(i) = stack.pop() {
            comp.push(i);
            let (x, y) = (i % w, i / w);
            for (dx, dy) in [(-1i64, 0i64), (1, 0), (0, -1), (0, 1)] {
                let (nx, ny) = (x as i64 + dx, y as i64 + dy);
                if nx >= 0 && ny >= 0 && (nx as usize) < w && (ny as usize) < h {
                    let j = ny as usize * w + nx as usize;
                    if m[j] && !seen[j] {
                        seen[j] = true;
                        stack.push(j);
                    }
                }
            }
        }
        if comp.len() >= min {
            for i in comp {
                out[i] = true;
            }
        }
    }
    out
}

/// The 8 neighbours P2..P9 clockwise from north (Zhang–Suen order).
fn neighbours(m: &[bool], w: usize, x: usize, y: usize) -> [bool; 8] {
    let g = |dx: i64, dy: i64| m[(y as i64 + dy) as usize * w + (x as i64 + dx) as usize];
    [g(0, -1), g(1, -1), g(1, 0), g(1, 1), g(0, 1), g(-1, 1), g(-1, 0), g(-1, -1)]
}

/// Zhang–Suen thinning (the border row/column is cleared first).
fn thin(mut m: Vec<bool>, w: usize, h: usize) -> Vec<bool> {
    for x in 0..w {
        m[x] = false;
        m[(h - 1) * w + x] = false;
    }
    for y in 0..h {
        m[y * w] = false;
        m[y * w + w - 1] = false;
    }
    let mut changed = true;
    while changed {
        changed = false;
        for step in 0..2 {
            let mut del = Vec::new();
            for y in 1..h - 1 {
                for x in 1..w - 1 {
                    if !m[y * w + x] {
                        continue;
                    }
                    let p = neighbours(&m, w, x, y);
                    let b = p.iter().filter(|v| **v).count();
                    let a = (0..8).filter(|&i| !p[i] && p[(i + 1) % 8]).count();
                    let (c1, c2) = if step == 0 {
                        (p[0] && p[2] && p[4], p[2] && p[4] && p[6])
                    } else {
                        (p[0] && p[2] && p[6], p[0] && p[4] && p[6])
                    };
                    if (2..=6).contains(&b) && a == 1 && !c1 && !c2 {
                        del.push(y * w + x);
                    }
                }
            }
            if !del.is_empty() {
                changed = true;
                for i in del {
                    m[i] = false;
                }
            }
        }
    }
    m
}

/// Removes the corner cell of every L-shaped step (its two arms touch diagonally anyway), so
/// that only junction cells have more than two neighbours.
fn unstair(mut m: Vec<bool>, w: usize, h: usize) -> Vec<bool> {
    for y in 1..h - 1 {
        for x in 1..w - 1 {
            if !m[y * w + x] {
                continue;
            }
            let p = neighbours(&m, w, x, y);
            // Arms at (a, b) (4-neighbours at a right angle); the three cells opposite empty.
            let corner = [(0, 2, [4, 5, 6]), (2, 4, [6, 7, 0]), (4, 6, [0, 1, 2]), (6, 0, [2, 3, 4])]
                .iter()
                .any(|&(a, b, opp)| p[a] && p[b] && opp.iter().all(|&o| !p[o]));
            if corner {
                m[y * w + x] = false;
            }
        }
    }
    m
}

/// Traces a skeleton into polylines between nodes (ends and junctions); dead-end branches
/// shorter than `min_spur` cells are removed (twice, so spurs of spurs go too).
fn trace(skel: &[bool], w: usize, h: usize, min_spur: usize) -> Vec<Vec<(usize, usize)>> {
    let mut m = skel.to_vec();
    let nb = |m: &[bool], i: usize| -> Vec<usize> {
        let (x, y) = ((i % w) as i64, (i / w) as i64);
        let mut out = Vec::new();
        for dy in -1..=1 {
            for dx in -1..=1 {
                if dx == 0 && dy == 0 {
                    continue;
                }
                let (nx, ny) = (x + dx, y + dy);
                if nx >= 0
                    && ny >= 0
                    && (nx as usize) < w
                    && (ny as usize) < h
                    && m[ny as usize * w + nx as usize]
                {
                    out.push(ny as usize * w + nx as usize);
                }
            }
        }
        out
    };
    let walk = |m: &[bool]| -> Vec<(Vec<usize>, bool, bool)> {
        // (cells, starts at an end, ends at an end)
        let is_node = |i: usize| nb(m, i).len() != 2;
        let mut used = std::collections::HashSet::new();
        let mut out = Vec::new();
        for s in 0..w * h {
            if !m[s] || !is_node(s) {
                continue;
            }
            for first in nb(m, s) {
                if used.contains(&(s.min(first), s.max(first))) {
                    continue;
                }
                let mut path = vec![s, first];
                used.insert((s.min(first), s.max(first)));
                let mut prev = s;
                let mut cur = first;
                while !is_node(cur) {
                    let next = nb(m, cur).into_iter().find(|&n| n != prev && !path.contains(&n));
                    let Some(n) = next else { break };
                    used.insert((cur.min(n), cur.max(n)));
                    path.push(n);
                    prev = cur;
                    cur = n;
                }
                let (a, b) = (nb(m, s).len() <= 1, nb(m, cur).len() <= 1);
                out.push((path, a, b));
            }
        }
        out
    };
    for _ in 0..2 {
        for (path, a_end, b_end) in walk(&m) {
            if (a_end || b_end) && !(a_end && b_end) && path.len() < min_spur {
                // Keep the junction cell.
                let keep = if a_end { path[path.len() - 1] } else { path[0] };
                for c in path {
                    if c != keep {
                        m[c] = false;
                    }
                }
            }
        }
    }
    walk(&m)
        .into_iter()
        .filter(|(p, a, b)| !(*a && *b) || p.len() >= min_spur)
        .map(|(p, _, _)| p.into_iter().map(|i| (i % w, i / w)).collect())
        .collect()
}

/// Moving average over 5 vertices (ends fixed): removes the skeleton's staircase.
fn smooth(p: &[P2]) -> Vec<P2> {
    let n = p.len();
    (0..n)
        .map(|i| {
            if i < 2 || i + 2 >= n {
                return p[i];
            }
            let s = (i - 2..=i + 2).fold([0.0, 0.0], |a, j| [a[0] + p[j][0], a[1] + p[j][1]]);
            [s[0] / 5.0, s[1] / 5.0]
        })
        .collect()
}

/// Joins polylines whose ends meet (within one diagonal cell) where exactly two ends meet:
/// the pieces a tracer cuts at stray node cells become one line.
fn join_through(mut lines: Vec<Vec<(usize, usize)>>) -> Vec<Vec<(usize, usize)>> {
    let close = |a: (usize, usize), b: (usize, usize)| a.0.abs_diff(b.0) <= 1 && a.1.abs_diff(b.1) <= 1;
    loop {
        let ends: Vec<(usize, bool, (usize, usize))> = lines
            .iter()
            .enumerate()
            .flat_map(|(i, l)| [(i, false, l[0]), (i, true, l[l.len() - 1])])
            .collect();
        let mut joined = false;
        'search: for (k, &(i, ie, p)) in ends.iter().enumerate() {
            let meeting: Vec<&(usize, bool, (usize, usize))> =
                ends.iter().enumerate().filter(|(j, e)| *j != k && close(e.2, p)).map(|(_, e)| e).collect();
            if meeting.len() == 1 && meeting[0].0 != i {
                let (j, je, _) = *meeting[0];
                let mut a = std::mem::take(&mut lines[i]);
                let mut b = std::mem::take(&mut lines[j]);
                if !ie {
                    a.reverse();
                }
                if je {
                    b.reverse();
                }
                a.extend(b);
                lines[i] = a;
                lines.remove(j);
                joined = true;
                break 'search;
            }
        }
        if !joined {
            return lines;
        }
    }
}
