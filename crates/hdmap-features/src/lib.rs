//! Feature maps for localization.
//!
//! * [`build_ndt`]: the LiDAR localization layer — the static cloud summarised per voxel as a
//!   normal distribution (mean, covariance, count; NDT, Biber & Straßer 2003, Magnusson 2009),
//!   written tiled by `hdmap_io::ndt::write_ndt`. Consumers match scans against it
//!   (hdmap-localize; Autoware's `ndt_scan_matcher` builds the same grid from the point cloud).
//! * [`visual`]: the visual layer — FAST/BRIEF features of the drive's camera images matched
//!   under the registered poses, triangulated and written as kapture 1.1.

pub mod visual;

use hdmap_core::GeoOrigin;
use hdmap_core::nalgebra::{Matrix3, Vector3};
use hdmap_io::ndt::{NdtCell, NdtMap};
use rayon::prelude::*;

/// Errors of the feature stage.
#[derive(Debug, thiserror::Error)]
pub enum FeaturesError {
    /// A setting out of range.
    #[error("features config: {0}")]
    Config(String),
    /// Unusable input.
    #[error("{what}: {detail}")]
    Input {
        /// What was given.
        what: String,
        /// The problem.
        detail: String,
    },
}

/// `[features]` of a pipeline config.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FeaturesConfig {
    /// The LiDAR NDT layer (`export/ndt_map/`).
    pub ndt: NdtConfig,
    /// The visual layer (`export/visual_map/`, built when the drive has `camera0/`).
    pub visual: visual::VisualConfig,
}

/// Settings of the NDT layer.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NdtConfig {
    /// Voxel edge, m (Autoware's NDT default resolution is 2 m; 1 m keeps kerbs and poles).
    pub voxel_size_m: f64,
    /// Voxels with fewer points are left out (their covariance is not estimable).
    pub min_points: usize,
    /// Side of the layer's tiles, m (the LAZ point-cloud tiles' side by default).
    pub tile_m: f64,
}

impl Default for NdtConfig {
    fn default() -> Self {
        Self { voxel_size_m: 1.0, min_points: 6, tile_m: 100.0 }
    }
}

impl NdtConfig {
    /// Checks ranges.
    pub fn validate(&self) -> Result<(), String> {
        for (k, v) in [("voxel_size_m", self.voxel_size_m), ("tile_m", self.tile_m)] {
            if !(v.is_finite() && v > 0.0) {
                return Err(format!("{k} = {v}: must be positive"));
            }
        }
        if self.min_points < 4 {
            return Err(format!("min_points = {}: a covariance needs at least 4 points", self.min_points));
        }
        Ok(())
    }
}

/// Builds the NDT layer of `points` (map frame: CRS coordinates minus `origin`'s). Each voxel
/// keeps its sufficient statistics — count, mean and the sample covariance, unregularised — so
/// consumers can merge voxels exactly and regularise as their matcher needs (a flat wall's
/// covariance is nearly singular).
pub fn build_ndt(points: &[[f64; 3]], origin: &GeoOrigin, cfg: &NdtConfig) -> Result<NdtMap, FeaturesError> {
    cfg.validate().map_err(FeaturesError::Config)?;
    if points.is_empty() {
        return Err(FeaturesError::Input { what: "static cloud".into(), detail: "no points".into() });
    }
    if let Some(p) = points.iter().find(|p| p.iter().any(|v| !v.is_finite())) {
        return Err(FeaturesError::Input {
            what: "static cloud".into(),
            detail: format!("non-finite point {p:?}"),
        });
    }
    let s = cfg.voxel_size_m;
    let mut keyed: Vec<([i64; 3], u32)> =
        points.par_iter().enumerate().map(|(i, p)| (p.map(|v| (v / s).floor() as i64), i as u32)).collect();
    keyed.par_sort_unstable();
    let runs: Vec<&[([i64; 3], u32)]> = keyed.chunk_by(|a, b| a.0 == b.0).collect();
    let cells = runs
        .par_iter()
        .filter(|run| run.len() >= cfg.min_points)
        .map(|run| {
            // Sums relative to the voxel's corner keep the f64 sums exact enough.
            let corner = Vector3::from(run[0].0.map(|k| k as f64 * s));
            let n = run.len() as f64;
            let mut sum = Vector3::zeros();
            let mut outer = Matrix3::zeros();
            for (_, i) in run.iter() {
                let d = Vector3::from(points[*i as usize]) - corner;
                sum += d;
                outer += d * d.transpose();
            }
            let mean = sum / n;
            let cov = (outer - n * mean * mean.transpose()) / (n - 1.0);
            let c = cov;
            let m = mean + corner;
            NdtCell {
                mean: [m.x, m.y, m.z],
                cov: [c[(0, 0)], c[(0, 1)], c[(0, 2)], c[(1, 1)], c[(1, 2)], c[(2, 2)]],
                count: run.len() as u32,
            }
        })
        .collect::<Vec<_>>();
    if cells.is_empty() {
        return Err(FeaturesError::Input {
            what: "static cloud".into(),
            detail: format!("no {} m voxel holds {} points", s, cfg.min_points),
        });
    }
    Ok(NdtMap { origin: origin.clone(), voxel_size_m: s, cells })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdmap_core::VerticalDatum;

    #[test]
    fn voxel_distributions_match_their_points() {
        // A tilted plane through one voxel and a vertical line through another: means and
        // covariances against the sample moments computed directly.
        let mut pts = Vec::new();
        for i in 0..10 {
            for j in 0..10 {
                let (x, y) = (0.05 + 0.09 * i as f64, 0.05 + 0.09 * j as f64);
                pts.push([x, y, 0.5 + 0.1 * x]);
            }
        }
        for k in 0..20 {
            pts.push([3.5, 3.5, 0.02 + 0.045 * k as f64]);
        }
        pts.push([10.5, 10.5, 10.5]); // a lone point: no voxel
        let origin = GeoOrigin { epsg: 5186, origin: [0.0; 3], vertical_datum: VerticalDatum::Kngeoid18 };
        let cfg = NdtConfig::default();
        let map = build_ndt(&pts, &origin, &cfg).expect("build");
        assert_eq!(map.cells.len(), 2);
        let plane = map.cells.iter().find(|c| c.count == 100).expect("plane voxel");
        let n = 100.0;
        let mean: Vec<f64> = (0..3).map(|k| pts[..100].iter().map(|p| p[k]).sum::<f64>() / n).collect();
        for (got, want) in plane.mean.iter().zip(&mean) {
            assert!((got - want).abs() < 1e-12);
        }
        // The sample covariance, as measured.
        let mut sample = Matrix3::zeros();
        for p in &pts[..100] {
            let d = Vector3::new(p[0] - mean[0], p[1] - mean[1], p[2] - mean[2]);
            sample += d * d.transpose();
        }
        let want = sample / (n - 1.0);
        let got = [plane.cov[0], plane.cov[1], plane.cov[2], plane.cov[3], plane.cov[4], plane.cov[5]];
        let w = [want[(0, 0)], want[(0, 1)], want[(0, 2)], want[(1, 1)], want[(1, 2)], want[(2, 2)]];
        for k in 0..6 {
            assert!((got[k] - w[k]).abs() < 1e-12, "{got:?} vs {w:?}");
        }
        // A tilted plane: its thinnest direction has (nearly) no variance, kept as measured.
        assert!(want.symmetric_eigen().eigenvalues.min().abs() < 1e-12);
        let line = map.cells.iter().find(|c| c.count == 20).expect("line voxel");
        assert!((line.mean[2] - (0.02 + 0.045 * 9.5)).abs() < 1e-12);
        // Bad input and settings are refused.
        assert!(build_ndt(&[], &origin, &cfg).is_err());
        assert!(build_ndt(&[[f64::NAN, 0.0, 0.0]], &origin, &cfg).is_err());
        assert!(build_ndt(&pts, &origin, &NdtConfig { voxel_size_m: 0.0, ..cfg.clone() }).is_err());
        assert!(build_ndt(&pts[100..101], &origin, &cfg).is_err(), "no voxel with enough points");
    }
}
