//! Configuration of the layout stage (`[layout]` in pipeline configs).

use serde::{Deserialize, Serialize};

/// Which paint segmentation to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SegmenterKind {
    /// Local contrast + whiteness / yellowness thresholds.
    Classical,
    /// The U-Net of `model` (see `learned`).
    Learned,
}

/// Layout extraction settings. Lengths in metres.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LayoutConfig {
    /// Paint segmentation.
    pub segmenter: SegmenterKind,
    /// Weights of the learned segmenter (safetensors, with its `.toml` card beside it).
    pub model: Option<std::path::PathBuf>,
    /// Tile size, px, and overlap between tiles, m.
    pub tile_px: usize,
    /// Overlap between neighbouring tiles, m (longer than the longest single mark).
    pub tile_overlap_m: f64,
    /// Widest paint stroke, m: the background is the image opened with a square this wide
    /// (arrow heads are ~0.9 m).
    pub stroke_max_m: f64,
    /// Paint must be this much brighter than its background (ratio) ...
    pub contrast_ratio: f64,
    /// ... and by at least this many grey levels.
    pub contrast_min: f64,
    /// Longest gap between dashes of one line, m.
    pub max_dash_gap_m: f64,
    /// Longest gap bridged under occlusion along a solid line, m (never across stop lines or
    /// crosswalks).
    pub max_bridge_gap_m: f64,
    /// Lateral tolerance when chaining pieces of one line, m.
    pub chain_lateral_m: f64,
    /// Simplification tolerance of output polylines (Douglas–Peucker), m.
    pub simplify_m: f64,
    /// Heights: the DSM is sampled along every line at this step, m, ...
    pub height_step_m: f64,
    /// ... and a sample becomes a vertex where the line's height between its vertices would
    /// otherwise be off by more than this, m (Douglas–Peucker on the height profile).
    pub height_tolerance_m: f64,
    /// Lane width range, m.
    pub lane_width_m: [f64; 2],
    /// Road centre lines from the road surface.
    pub roads: crate::roads::RoadConfig,
}

impl LayoutConfig {
    /// Checks the numeric settings: lengths and ratios where the stage needs them positive or
    /// non-negative. The message names the key.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("stroke_max_m", self.stroke_max_m),
            ("contrast_ratio", self.contrast_ratio),
            ("chain_lateral_m", self.chain_lateral_m),
            ("height_step_m", self.height_step_m),
            ("lane_width_m[0]", self.lane_width_m[0]),
        ];
        let non_negative = [
            ("contrast_min", self.contrast_min),
            ("tile_overlap_m", self.tile_overlap_m),
            ("max_dash_gap_m", self.max_dash_gap_m),
            ("max_bridge_gap_m", self.max_bridge_gap_m),
            ("simplify_m", self.simplify_m),
            ("height_tolerance_m", self.height_tolerance_m),
        ];
        for (key, v) in positive {
            if !(v.is_finite() && v > 0.0) {
                return Err(format!("{key} = {v}: needs a positive number"));
            }
        }
        for (key, v) in non_negative {
            if !(v.is_finite() && v >= 0.0) {
                return Err(format!("{key} = {v}: needs a number ≥ 0"));
            }
        }
        if !(self.lane_width_m[1].is_finite() && self.lane_width_m[1] > self.lane_width_m[0]) {
            return Err(format!("lane_width_m = {:?}: needs [min, max] with max > min", self.lane_width_m));
        }
        Ok(())
    }
}

impl Default for LayoutConfig {
    fn default() -> Self {
        Self {
            segmenter: SegmenterKind::Classical,
            model: None,
            tile_px: 2048,
            tile_overlap_m: 12.0,
            stroke_max_m: 1.1,
            contrast_ratio: 1.35,
            contrast_min: 20.0,
            max_dash_gap_m: 7.0,
            max_bridge_gap_m: 14.0,
            chain_lateral_m: 0.25,
            simplify_m: 0.02,
            height_step_m: 1.0,
            height_tolerance_m: 0.02,
            lane_width_m: [2.6, 4.4],
            roads: Default::default(),
        }
    }
}
