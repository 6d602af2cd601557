//! Connected components of the paint mask and their shape: the raw pieces the vectoriser
//! assembles into lines, stop lines, crosswalks and arrows.

use crate::segment::PaintClass;

/// A connected paint component in world coordinates.
#[derive(Debug, Clone)]
pub struct Piece {
    /// Pixel centres (world x, y).
    pub pts: Vec<[f64; 2]>,
    /// Share of yellow pixels.
    pub yellow: f64,
    /// Centroid.
    pub centroid: [f64; 2],
    /// Unit principal axis.
    pub axis: [f64; 2],
    /// Extent along the axis, m.
    pub length: f64,
    /// Mean width (area / length), m.
    pub width: f64,
    /// Widest extent across the axis within a 1 m slice along it, m.
    pub span: f64,
    /// Area, m².
    pub area: f64,
    /// The ground on its two sides differs (one side lit, one in shadow, or two surfaces).
    pub unlike_sides: bool,
}

impl Piece {
    /// Shape from pixel centres.
    pub fn new(pts: Vec<[f64; 2]>, yellow: f64, gsd: f64) -> Self {
        let n = pts.len() as f64;
        let c = [pts.iter().map(|p| p[0]).sum::<f64>() / n, pts.iter().map(|p| p[1]).sum::<f64>() / n];
        let (mut sxx, mut sxy, mut syy) = (0.0, 0.0, 0.0);
        for p in &pts {
            let (dx, dy) = (p[0] - c[0], p[1] - c[1]);
            sxx += dx * dx;
            sxy += dx * dy;
            syy += dy * dy;
        }
        let ang = 0.5 * (2.0 * sxy).atan2(sxx - syy);
        let axis = [ang.cos(), ang.sin()];
        let (mut lo, mut hi, mut clo, mut chi) =
            (f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::NEG_INFINITY);
        for p in &pts {
            let (dx, dy) = (p[0] - c[0], p[1] - c[1]);
            let u = dx * axis[0] + dy * axis[1];
            let v = -dx * axis[1] + dy * axis[0];
            lo = lo.min(u);
            hi = hi.max(u);
            clo = clo.min(v);
            chi = chi.max(v);
        }
        let length = hi - lo + gsd;
        let area = n * gsd * gsd;
        // Span: the widest extent across the axis within any 1 m slice along it (so a gently
        // curving line stays thin; an arrow head does not).
        let nb = (((hi - lo) / 1.0).ceil() as usize).max(1);
        let mut slices = vec![(f64::INFINITY, f64::NEG_INFINITY); nb];
        for p in &pts {
            let (dx, dy) = (p[0] - c[0], p[1] - c[1]);
            let u = dx * axis[0] + dy * axis[1];
            let v = -dx * axis[1] + dy * axis[0];
            let b = (((u - lo) / 1.0) as usize).min(nb - 1);
            slices[b] = (slices[b].0.min(v), slices[b].1.max(v));
        }
        let span = slices.iter().filter(|s| s.0 <= s.1).map(|s| s.1 - s.0).fold(0.0, f64::max) + gsd;
        let _ = (clo, chi);
        Self { pts, yellow, centroid: c, axis, length, width: area / length, span, area, unlike_sides: false }
    }

    /// Centre line along the principal axis: centroids of `step`-long bins, ordered along the
    /// axis (follows gentle curvature).
    pub fn centerline(&self, step: f64) -> Vec<[f64; 2]> {
        let c = self.centroid;
        let a = self.axis;
        let us: Vec<f64> = self.pts.iter().map(|p| (p[0] - c[0]) * a[0] + (p[1] - c[1]) * a[1]).collect();
        let lo = us.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = us.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let nb = (((hi - lo) / step).ceil() as usize).max(1);
        let mut acc = vec![(0.0, 0.0, 0usize); nb];
        for (p, u) in self.pts.iter().zip(&us) {
            let b = (((u - lo) / step) as usize).min(nb - 1);
            acc[b].0 += p[0];
            acc[b].1 += p[1];
            acc[b].2 += 1;
        }
        let mut line: Vec<[f64; 2]> =
            acc.iter().filter(|a| a.2 > 0).map(|a| [a.0 / a.2 as f64, a.1 / a.2 as f64]).collect();
        // Extend the ends to the paint's extent along the axis.
        if line.len() >= 2 {
            let n = line.len();
            let first = line[0];
            let last = line[n - 1];
            let uf = (first[0] - c[0]) * a[0] + (first[1] - c[1]) * a[1];
            let ul = (last[0] - c[0]) * a[0] + (last[1] - c[1]) * a[1];
            line[0] = [first[0] - a[0] * (uf - lo), first[1] - a[1] * (uf - lo)];
            line[n - 1] = [last[0] + a[0] * (hi - ul), last[1] + a[1] * (hi - ul)];
        } else {
            line = vec![[c[0] + a[0] * lo, c[1] + a[1] * lo], [c[0] + a[0] * hi, c[1] + a[1] * hi]];
        }
        line
    }
}

/// 8-connected components of non-`None` pixels; returns pixel lists and yellow shares.
pub fn components(mask: &[PaintClass], w: usize, h: usize, min_px: usize) -> Vec<(Vec<(usize, usize)>, f64)> {
    let mut label = vec![u32::MAX; w * h];
    let mut out = Vec::new();
    let mut stack = Vec::new();
    for start in 0..w * h {
        if mask[start] == PaintClass::None || label[start] != u32::MAX {
            continue;
        }
        let id = out.len() as u32;
        label[start] = id;
        stack.push(start);
        let mut px = Vec::new();
        let mut yellow = 0usize;
        while let Some(i) = stack.pop() {
            let (x, y) = (i % w, i / w);
            px.push((x, y));
            yellow += (mask[i] == PaintClass::Yellow) as usize;
            for dy in -1i64..=1 {
                for dx in -1i64..=1 {
                    let (nx, ny) = (x as i64 + dx, y as i64 + dy);
                    if nx < 0 || ny < 0 || nx >= w as i64 || ny >= h as i64 {
                        continue;
                    }
                    let j = ny as usize * w + nx as usize;
                    if mask[j] != PaintClass::None && label[j] == u32::MAX {
                        label[j] = id;
                        stack.push(j);
                    }
                }
            }
        }
        let n = px.len();
        if n >= min_px {
            out.push((px, yellow as f64 / n as f64));
        } else {
            // Keep ids dense: a dropped component is still labelled, so push a placeholder.
            out.push((Vec::new(), 0.0));
        }
    }
    out.into_iter().filter(|c| !c.0.is_empty()).collect()
}
