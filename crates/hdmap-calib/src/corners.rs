//! Chessboard inner-corner detection with sub-pixel refinement (no OpenCV).
//!
//! 1. Saddle response: for several Gaussian scales σ, `σ⁴·max(0, Ixy² − Ixx·Iyy)` (the
//!    Hessian determinant is negative at an X-corner and ≈ 0 on straight edges), maximum over
//!    scales; non-maximum suppression keeps candidates.
//! 2. Sub-pixel refinement as OpenCV's `cornerSubPix`: the corner is the point `p` for which
//!    every nearby gradient `g(q)` is orthogonal to `q − p`; solved iteratively. Once the board
//!    is assembled, every corner is refined again with a window sized to the local square, the
//!    size chosen per image as the one giving the smoothest grid.
//! 3. Grid growth: from a seed with four neighbours along two directions, neighbours are
//!    predicted by extrapolating the local grid step (handles perspective) and matched to the
//!    nearest candidate; the result must be exactly `cols × rows` with no holes.
//! 4. Ordering: indices are assigned so that `x = i·square` runs along the `cols` direction and
//!    the labelling is right-handed in the image (object frame seen from the front).

use image::GrayImage;

/// A grayscale image as f32 in [0, 1], row-major.
#[derive(Debug, Clone)]
pub struct Gray {
    /// Width, px.
    pub w: usize,
    /// Height, px.
    pub h: usize,
    /// Pixels.
    pub px: Vec<f32>,
}

impl Gray {
    /// From an 8-bit image.
    pub fn from_image(img: &GrayImage) -> Self {
        Self {
            w: img.width() as usize,
            h: img.height() as usize,
            px: img.as_raw().iter().map(|v| *v as f32 / 255.0).collect(),
        }
    }

    fn at(&self, x: usize, y: usize) -> f32 {
        self.px[y * self.w + x]
    }
}

fn gaussian_blur(img: &Gray, sigma: f32) -> Gray {
    let r = (3.0 * sigma).ceil() as isize;
    let k: Vec<f32> = (-r..=r).map(|i| (-(i * i) as f32 / (2.0 * sigma * sigma)).exp()).collect();
    let s: f32 = k.iter().sum();
    let k: Vec<f32> = k.iter().map(|v| v / s).collect();
    let (w, h) = (img.w as isize, img.h as isize);
    let mut tmp = vec![0f32; img.px.len()];
    for y in 0..h {
        for x in 0..w {
            let mut acc = 0.0;
            for (j, kv) in k.iter().enumerate() {
                let xx = (x + j as isize - r).clamp(0, w - 1);
                acc += kv * img.px[(y * w + xx) as usize];
            }
            tmp[(y * w + x) as usize] = acc;
        }
    }
    let mut out = vec![0f32; img.px.len()];
    for y in 0..h {
        for x in 0..w {
            let mut acc = 0.0;
            for (j, kv) in k.iter().enumerate() {
                let yy = (y + j as isize - r).clamp(0, h - 1);
                acc += kv * tmp[(yy * w + x) as usize];
            }
            out[(y * w + x) as usize] = acc;
        }
    }
    Gray { w: img.w, h: img.h, px: out }
}

/// Saddle-point response, maximum over scales (scales grow with image size).
pub fn saddle_response(img: &Gray) -> Vec<f32> {
    let base = (img.w.max(img.h) as f32 / 1000.0).max(1.0);
    let mut resp = vec![0f32; img.px.len()];
    for s in [1.0f32, 1.6, 2.5] {
        let sigma = s * base;
        let g = gaussian_blur(img, sigma);
        let norm = sigma.powi(4);
        for y in 1..img.h - 1 {
            for x in 1..img.w - 1 {
                let c = g.at(x, y);
                let ixx = g.at(x + 1, y) - 2.0 * c + g.at(x - 1, y);
                let iyy = g.at(x, y + 1) - 2.0 * c + g.at(x, y - 1);
                let ixy = 0.25
                    * (g.at(x + 1, y + 1) - g.at(x - 1, y + 1) - g.at(x + 1, y - 1) + g.at(x - 1, y - 1));
                let v = norm * (ixy * ixy - ixx * iyy).max(0.0);
                let i = y * img.w + x;
                if v > resp[i] {
                    resp[i] = v;
                }
            }
        }
    }
    resp
}

/// Local maxima of the response, strongest first (at most `max_count`).
pub fn candidates(img: &Gray, resp: &[f32], max_count: usize) -> Vec<[f64; 2]> {
    candidates_with_strength(img, resp, max_count).into_iter().map(|c| c.0).collect()
}

/// Local maxima with their response, strongest first.
pub fn candidates_with_strength(img: &Gray, resp: &[f32], max_count: usize) -> Vec<([f64; 2], f32)> {
    let r = (4.0 * (img.w.max(img.h) as f32 / 1000.0).max(1.0)).round() as isize;
    let peak = resp.iter().copied().fold(0.0f32, f32::max);
    let thresh = 0.01 * peak;
    let (w, h) = (img.w as isize, img.h as isize);
    let mut out: Vec<(f32, [f64; 2])> = Vec::new();
    let margin = r + 2;
    for y in margin..h - margin {
        for x in margin..w - margin {
            let v = resp[(y * w + x) as usize];
            if v < thresh {
                continue;
            }
            let mut is_max = true;
            'n: for dy in -r..=r {
                for dx in -r..=r {
                    if (dx, dy) == (0, 0) {
                        continue;
                    }
                    let u = resp[((y + dy) * w + x + dx) as usize];
                    if u > v || (u == v && (dy, dx) < (0, 0)) {
                        is_max = false;
                        break 'n;
                    }
                }
            }
            if is_max {
                out.push((v, [x as f64, y as f64]));
            }
        }
    }
    out.sort_by(|a, b| b.0.total_cmp(&a.0));
    out.truncate(max_count);
    out.into_iter().map(|(v, p)| (p, v)).collect()
}

/// `cornerSubPix`-style refinement: a `(2·half+1)²` window resampled (bilinear) exactly
/// around the current estimate, gradients by central differences on it, weights
/// `exp(−(dx² + dy²)/half²)`; iterate `p = (Σ w g gᵀ)⁻¹ Σ w g gᵀ q` until it moves < 0.001 px.
pub fn refine(img: &Gray, p: [f64; 2], half: usize) -> Option<[f64; 2]> {
    let (w, h) = (img.w as isize, img.h as isize);
    let sample = |x: f64, y: f64| -> f64 {
        let (x0, y0) = (x.floor(), y.floor());
        let (fx, fy) = (x - x0, y - y0);
        let (xi, yi) = (x0 as isize, y0 as isize);
        let at = |xx: isize, yy: isize| img.px[(yy.clamp(0, h - 1) * w + xx.clamp(0, w - 1)) as usize] as f64;
        (1.0 - fy) * ((1.0 - fx) * at(xi, yi) + fx * at(xi + 1, yi))
            + fy * ((1.0 - fx) * at(xi, yi + 1) + fx * at(xi + 1, yi + 1))
    };
    let hw = half as isize;
    let n = 2 * hw + 3;
    let mut c = p;
    let mut patch = vec![0f64; (n * n) as usize];
    for _ in 0..40 {
        if c[0] < (hw + 2) as f64
            || c[1] < (hw + 2) as f64
            || c[0] > (w - hw - 3) as f64
            || c[1] > (h - hw - 3) as f64
        {
            return None;
        }
        for j in 0..n {
            for i in 0..n {
                patch[(j * n + i) as usize] = sample(c[0] + (i - hw - 1) as f64, c[1] + (j - hw - 1) as f64);
            }
        }
        let (mut a11, mut a12, mut a22, mut b1, mut b2) = (0f64, 0f64, 0f64, 0f64, 0f64);
        let inv = 1.0 / (half * half) as f64;
        for j in 1..n - 1 {
            for i in 1..n - 1 {
                let (dx, dy) = ((i - hw - 1) as f64, (j - hw - 1) as f64);
                let wgt = (-(dx * dx + dy * dy) * inv).exp();
                let gx = 0.5 * (patch[(j * n + i + 1) as usize] - patch[(j * n + i - 1) as usize]);
                let gy = 0.5 * (patch[((j + 1) * n + i) as usize] - patch[((j - 1) * n + i) as usize]);
                let (gxx, gxy, gyy) = (gx * gx * wgt, gx * gy * wgt, gy * gy * wgt);
                a11 += gxx;
                a12 += gxy;
                a22 += gyy;
                b1 += gxx * dx + gxy * dy;
                b2 += gxy * dx + gyy * dy;
            }
        }
        let det = a11 * a22 - a12 * a12;
        if det.abs() < 1e-12 {
            return None;
        }
        let d = [(a22 * b1 - a12 * b2) / det, (a11 * b2 - a12 * b1) / det];
        c = [c[0] + d[0], c[1] + d[1]];
        if d[0].hypot(d[1]) < 1e-3 {
            break;
        }
    }
    ((c[0] - p[0]).hypot(c[1] - p[1]) < half as f64).then_some(c)
}

/// A detected board: corners row-major (`rows` rows of `cols`), object indices implied.
#[derive(Debug, Clone)]
pub struct Board {
    /// Inner corners per row.
    pub cols: usize,
    /// Rows of inner corners.
    pub rows: usize,
    /// Corner pixels, `corners[j * cols + i]` at object point (i, j).
    pub corners: Vec<[f64; 2]>,
}

fn grow(cands: &[[f64; 2]], seed: usize) -> Option<std::collections::HashMap<(i32, i32), usize>> {
    use std::collections::HashMap;
    let d2 = |a: [f64; 2], b: [f64; 2]| (a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2);
    let p0 = cands[seed];
    let mut near: Vec<usize> = (0..cands.len()).filter(|&i| i != seed).collect();
    near.sort_by(|&a, &b| d2(cands[a], p0).total_cmp(&d2(cands[b], p0)));
    near.truncate(8);
    if near.len() < 4 {
        return None;
    }
    let u = [cands[near[0]][0] - p0[0], cands[near[0]][1] - p0[1]];
    let un = u[0].hypot(u[1]);
    // Second direction: the nearest neighbour not parallel to u.
    let v = near[1..].iter().map(|&i| [cands[i][0] - p0[0], cands[i][1] - p0[1]]).find(|v| {
        let c = (u[0] * v[1] - u[1] * v[0]).abs() / (un * v[0].hypot(v[1]));
        c > 0.7
    })?;
    let find = |p: [f64; 2], step: f64, used: &std::collections::HashSet<usize>| -> Option<usize> {
        let tol = (0.3 * step).powi(2);
        let mut best: Option<(f64, usize)> = None;
        for (i, q) in cands.iter().enumerate() {
            let d = d2(*q, p);
            if d < tol && best.is_none_or(|b| d < b.0) && !used.contains(&i) {
                best = Some((d, i));
            }
        }
        best.map(|b| b.1)
    };
    let mut used = std::collections::HashSet::from([seed]);
    let mut grid: HashMap<(i32, i32), usize> = HashMap::new();
    grid.insert((0, 0), seed);
    let mut queue = vec![(0i32, 0i32)];
    let dirs = [(1, 0), (-1, 0), (0, 1), (0, -1)];
    while let Some((i, j)) = queue.pop() {
        let p = cands[grid[&(i, j)]];
        for (di, dj) in dirs {
            let key = (i + di, j + dj);
            if grid.contains_key(&key) {
                continue;
            }
            // Local step: from the opposite neighbour if known, else the seed vectors.
            let step = match grid.get(&(i - di, j - dj)) {
                Some(&k) => [p[0] - cands[k][0], p[1] - cands[k][1]],
                None => {
                    let base = if di != 0 { u } else { v };
                    let s = (di + dj) as f64;
                    // Use a known parallel neighbour's step when available (perspective).
                    let par = if di != 0 { [(i, j + 1), (i, j - 1)] } else { [(i + 1, j), (i - 1, j)] };
                    par.iter()
                        .find_map(|q| {
                            let a = grid.get(q)?;
                            let b = grid.get(&(q.0 + di, q.1 + dj))?;
                            Some([cands[*b][0] - cands[*a][0], cands[*b][1] - cands[*a][1]])
                        })
                        .unwrap_or([base[0] * s, base[1] * s])
                }
            };
            let pred = [p[0] + step[0], p[1] + step[1]];
            if let Some(k) = find(pred, step[0].hypot(step[1]), &used) {
                used.insert(k);
                grid.insert(key, k);
                queue.push(key);
            }
        }
        if grid.len() > 4000 {
            return None;
        }
    }
    Some(grid)
}

/// A lens bends grid lines smoothly: along every row and column, the second difference of
/// corner positions stays far below the local step. A wrongly matched corner breaks this.
fn consistent(c: &[[f64; 2]], cols: usize, rows: usize) -> bool {
    let at = |i: usize, j: usize| c[j * cols + i];
    let check = |a: [f64; 2], b: [f64; 2], m: [f64; 2]| {
        let step = ((b[0] - a[0]).hypot(b[1] - a[1])) / 2.0;
        let dd = (a[0] + b[0] - 2.0 * m[0]).hypot(a[1] + b[1] - 2.0 * m[1]);
        dd < 0.2 * step
    };
    for j in 0..rows {
        for i in 1..cols - 1 {
            if !check(at(i - 1, j), at(i + 1, j), at(i, j)) {
                return false;
            }
        }
    }
    for i in 0..cols {
        for j in 1..rows - 1 {
            if !check(at(i, j - 1), at(i, j + 1), at(i, j)) {
                return false;
            }
        }
    }
    true
}

/// Mean squared second difference of corner positions along rows and columns, px².
fn roughness(c: &[[f64; 2]], cols: usize, rows: usize) -> f64 {
    let at = |i: usize, j: usize| c[j * cols + i];
    let dd = |a: [f64; 2], m: [f64; 2], b: [f64; 2]| {
        (a[0] + b[0] - 2.0 * m[0]).powi(2) + (a[1] + b[1] - 2.0 * m[1]).powi(2)
    };
    let (mut sum, mut n) = (0.0, 0usize);
    for j in 0..rows {
        for i in 1..cols - 1 {
            sum += dd(at(i - 1, j), at(i, j), at(i + 1, j));
            n += 1;
        }
    }
    for i in 0..cols {
        for j in 1..rows - 1 {
            sum += dd(at(i, j - 1), at(i, j), at(i, j + 1));
            n += 1;
        }
    }
    sum / n.max(1) as f64
}

/// Detects a `cols × rows` inner-corner chessboard.
///
/// The grown grid may include the weak L-corners where the outer squares meet the board's
/// margin; the `cols × rows` window with the strongest total saddle response is the board.
pub fn detect(img: &GrayImage, cols: usize, rows: usize) -> Option<Board> {
    let g = Gray::from_image(img);
    let resp = saddle_response(&g);
    let raw = candidates_with_strength(&g, &resp, (cols * rows * 4).max(200));
    let half = ((g.w.max(g.h) as f64 / 1000.0).max(1.0) * 5.0).round() as usize;
    // Refine and merge duplicates that converged to the same corner (keep the stronger).
    let mut uniq: Vec<([f64; 2], f32)> = Vec::new();
    for (p, v) in raw {
        let Some(c) = refine(&g, p, half) else { continue };
        if !uniq.iter().any(|u| (u.0[0] - c[0]).hypot(u.0[1] - c[1]) < 2.0) {
            uniq.push((c, v));
        }
    }
    let pts: Vec<[f64; 2]> = uniq.iter().map(|u| u.0).collect();
    let n = cols * rows;
    for seed in 0..pts.len().min(40) {
        let Some(grid) = grow(&pts, seed) else { continue };
        if grid.len() < n {
            continue;
        }
        let (imin, imax) = grid.keys().fold((i32::MAX, i32::MIN), |a, k| (a.0.min(k.0), a.1.max(k.0)));
        let (jmin, jmax) = grid.keys().fold((i32::MAX, i32::MIN), |a, k| (a.0.min(k.1), a.1.max(k.1)));
        // Best fully-filled window, in either orientation.
        let mut best: Option<(f32, i32, i32, bool)> = None;
        for transpose in [false, true] {
            let (wi, wj) = if transpose { (rows as i32, cols as i32) } else { (cols as i32, rows as i32) };
            for i0 in imin..=imax - wi + 1 {
                for j0 in jmin..=jmax - wj + 1 {
                    let mut score = 0.0f32;
                    let mut full = true;
                    'w: for j in j0..j0 + wj {
                        for i in i0..i0 + wi {
                            match grid.get(&(i, j)) {
                                Some(&k) => score += uniq[k].1,
                                None => {
                                    full = false;
                                    break 'w;
                                }
                            }
                        }
                    }
                    if full && best.is_none_or(|b| score > b.0) {
                        best = Some((score, i0, j0, transpose));
                    }
                }
            }
        }
        let Some((_, i0, j0, transpose)) = best else { continue };
        let mut corners = vec![[0.0; 2]; n];
        for j in 0..rows {
            for i in 0..cols {
                let key =
                    if transpose { (i0 + j as i32, j0 + i as i32) } else { (i0 + i as i32, j0 + j as i32) };
                corners[j * cols + i] = pts[grid[&key]];
            }
        }
        if !consistent(&corners, cols, rows) {
            continue;
        }
        // Final refinement with a window matched to the local square size: large windows
        // average noise, small ones stay clear of neighbouring corners and the board's rim. The
        // window fraction that makes the grid smoothest (least second difference along rows and
        // columns — lenses bend grid lines smoothly) wins.
        let neighbour_min = |c: &[[f64; 2]], i: usize, j: usize| {
            let p = c[j * cols + i];
            let mut d = f64::INFINITY;
            for (di, dj) in [(1i64, 0i64), (-1, 0), (0, 1), (0, -1)] {
                let (ii, jj) = (i as i64 + di, j as i64 + dj);
                if ii >= 0 && jj >= 0 && (ii as usize) < cols && (jj as usize) < rows {
                    let q = c[jj as usize * cols + ii as usize];
                    d = d.min((p[0] - q[0]).hypot(p[1] - q[1]));
                }
            }
            d
        };
        let mut best_refined: Option<(f64, Vec<[f64; 2]>)> = None;
        for frac in [0.2, 0.25, 0.3, 0.35, 0.4] {
            let refined: Vec<[f64; 2]> = (0..n)
                .map(|k| {
                    let (i, j) = (k % cols, k / cols);
                    let hw = ((frac * neighbour_min(&corners, i, j)).round() as usize).clamp(3, 25);
                    refine(&g, corners[k], hw).unwrap_or(corners[k])
                })
                .collect();
            let rough = roughness(&refined, cols, rows);
            if best_refined.as_ref().is_none_or(|b| rough < b.0) {
                best_refined = Some((rough, refined));
            }
        }
        let refined = best_refined.map(|b| b.1).unwrap_or_else(|| corners.clone());
        corners = refined;
        // Right-handed labelling (image x right, y down): flip i if needed.
        let (o, x1, y1) = (corners[0], corners[1], corners[cols]);
        let cross = (x1[0] - o[0]) * (y1[1] - o[1]) - (x1[1] - o[1]) * (y1[0] - o[0]);
        if cross < 0.0 {
            for j in 0..rows {
                corners[j * cols..(j + 1) * cols].reverse();
            }
        }
        return Some(Board { cols, rows, corners });
    }
    None
}
