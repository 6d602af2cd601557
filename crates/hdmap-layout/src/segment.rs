//! Paint segmentation of an orthophoto tile.
//!
//! The classical segmenter marks a pixel as paint when it is clearly brighter than its
//! surroundings (ratio and absolute difference to the mean of a window of a few metres, so
//! paint in shadow counts too) and colourless (white) or yellow.

use crate::config::LayoutConfig;

/// Per-pixel paint class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum PaintClass {
    /// Not paint.
    None = 0,
    /// White paint.
    White = 1,
    /// Yellow paint.
    Yellow = 2,
}

/// An RGB tile, row-major, interleaved.
pub struct RgbTile<'a> {
    /// Width, px.
    pub w: usize,
    /// Height, px.
    pub h: usize,
    /// Pixels.
    pub rgb: &'a [u8],
}

/// A paint segmenter: one class per pixel.
pub trait Segmenter: Sync {
    /// Segments a tile whose pixels are `gsd_m` wide.
    fn segment(&self, tile: &RgbTile<'_>, gsd_m: f64) -> Vec<PaintClass>;
}

/// Sliding-window minimum (or maximum) along rows then columns over a `k × k` square
/// (monotonic deque, O(1) per pixel).
fn filter_square(src: &[f32], w: usize, h: usize, k: usize, max: bool) -> Vec<f32> {
    let r = k / 2;
    let better = |a: f32, b: f32| if max { a >= b } else { a <= b };
    let pass = |get: &dyn Fn(usize) -> f32, n: usize, out: &mut dyn FnMut(usize, f32)| {
        let mut dq: std::collections::VecDeque<usize> = std::collections::VecDeque::new();
        // Window [i − r, i + r], clamped.
        let mut next = 0usize;
        for i in 0..n {
            let hi = (i + r).min(n - 1);
            while next <= hi {
                let v = get(next);
                while dq.back().is_some_and(|&b| better(v, get(b))) {
                    dq.pop_back();
                }
                dq.push_back(next);
                next += 1;
            }
            while dq.front().is_some_and(|&f| f + r < i) {
                dq.pop_front();
            }
            out(i, get(*dq.front().unwrap_or(&i)));
        }
    };
    let mut tmp = vec![0f32; w * h];
    for y in 0..h {
        pass(&|x| src[y * w + x], w, &mut |x, v| tmp[y * w + x] = v);
    }
    let mut out = vec![0f32; w * h];
    for x in 0..w {
        pass(&|y| tmp[y * w + x], h, &mut |y, v| out[y * w + x] = v);
    }
    out
}

/// White top-hat segmentation: the background is the grey-level opening of the image with a
/// square wider than any paint stroke (it removes bright strokes narrower than the square but
/// keeps roofs, sidewalks and cars); paint is much brighter than that background (ratio and
/// difference) and white or yellow.
pub struct Classical {
    /// Settings.
    pub cfg: LayoutConfig,
}

impl Segmenter for Classical {
    fn segment(&self, tile: &RgbTile<'_>, gsd_m: f64) -> Vec<PaintClass> {
        let (w, h) = (tile.w, tile.h);
        let lum: Vec<f32> = tile
            .rgb
            .chunks_exact(3)
            .map(|p| 0.299 * p[0] as f32 + 0.587 * p[1] as f32 + 0.114 * p[2] as f32)
            .collect();
        let k = (((self.cfg.stroke_max_m / gsd_m).round() as usize) | 1).max(3);
        let background = filter_square(&filter_square(&lum, w, h, k, false), w, h, k, true);
        let mut out = vec![PaintClass::None; w * h];
        for i in 0..w * h {
            let (l, b) = (lum[i] as f64, background[i] as f64);
            if !(l > self.cfg.contrast_ratio * b && l - b > self.cfg.contrast_min) {
                continue;
            }
            let p = &tile.rgb[i * 3..i * 3 + 3];
            let (rr, gg, bb) = (p[0] as f64, p[1] as f64, p[2] as f64);
            let max = rr.max(gg).max(bb);
            let min = rr.min(gg).min(bb);
            let chroma = (max - min) / max.max(1.0);
            // Shadow light is bluish, so white paint in shadow has some chroma; paint is never
            // green or red though.
            let green = gg > 1.12 * rr && gg > 1.12 * bb;
            let red = rr > 1.25 * gg && rr > 1.25 * bb;
            out[i] = if rr - bb > 0.3 * max && gg - bb > 0.2 * max {
                PaintClass::Yellow
            } else if chroma < 0.4 && !green && !red {
                PaintClass::White
            } else {
                PaintClass::None
            };
        }
        out
    }
}
