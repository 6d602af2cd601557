//! The LiDAR localization layer: a voxel grid of normal distributions (NDT), tiled like the
//! point-cloud layer.
//!
//! ```text
//! ndt_map/metadata.json      {"format": "hdmap-ndt 1", "epsg", "origin", "vertical_datum",
//!                             "voxel_size_m", "tile_m", "tiles": [{"file", "x", "y", "cells"}]}
//! ndt_map/<i>_<j>.pcd        one point per voxel: x y z = the mean of its points (map frame:
//!                            CRS coordinates minus `origin`; F4, sub-millimetre within 10 km),
//!                            cov = xx xy xz yy yz zz (m², F8), count = points (U4)
//! ```
//!
//! Tiles are squares of `tile_m` of the map frame, named by their column and row (lower-left
//! corner `(i·tile_m, j·tile_m)`, also in the metadata); a voxel lies in the tile of its mean. PCD keeps the layer loadable by ordinary point-cloud
//! tools (the means show the map's shape). The folder is assembled beside its destination and
//! renamed into place.

use std::collections::BTreeMap;
use std::path::Path;

use hdmap_core::{CloudFrame, Column, ColumnValues, GeoOrigin, PointCloud};

use crate::IoError;
use crate::pcd::{PcdEncoding, PcdWriteOptions, read_pcd, write_pcd};

/// Format tag in `metadata.json`.
pub const FORMAT: &str = "hdmap-ndt 1";

/// One voxel's distribution.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NdtCell {
    /// Mean of the voxel's points, map frame, m.
    pub mean: [f64; 3],
    /// Covariance (xx, xy, xz, yy, yz, zz), m².
    pub cov: [f64; 6],
    /// Points it summarises.
    pub count: u32,
}

/// A voxel grid of normal distributions in a map frame.
#[derive(Debug, Clone, PartialEq)]
pub struct NdtMap {
    /// CRS and origin of the map frame.
    pub origin: GeoOrigin,
    /// Voxel edge, m.
    pub voxel_size_m: f64,
    /// The voxels (any order).
    pub cells: Vec<NdtCell>,
}

fn format_err(path: &Path, detail: impl Into<String>) -> IoError {
    IoError::Format { path: path.to_path_buf(), format: "NDT map", detail: detail.into() }
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Metadata {
    format: String,
    epsg: u32,
    origin: [f64; 3],
    vertical_datum: String,
    voxel_size_m: f64,
    tile_m: f64,
    tiles: Vec<TileEntry>,
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TileEntry {
    file: String,
    x: f64,
    y: f64,
    cells: usize,
}

/// Writes `map` as the folder `dir` (replaced if it exists), in tiles of `tile_m`.
pub fn write_ndt(dir: &Path, map: &NdtMap, tile_m: f64) -> Result<(), IoError> {
    if !(tile_m.is_finite() && tile_m > 0.0 && map.voxel_size_m.is_finite() && map.voxel_size_m > 0.0) {
        return Err(format_err(
            dir,
            format!("tile {tile_m} m, voxel {} m: both must be positive", map.voxel_size_m),
        ));
    }
    if let Some(c) = map.cells.iter().find(|c| c.mean.iter().chain(&c.cov).any(|v| !v.is_finite())) {
        return Err(format_err(dir, format!("a voxel at {:?} is not finite", c.mean)));
    }
    let mut tiles: BTreeMap<(i64, i64), Vec<&NdtCell>> = BTreeMap::new();
    for c in &map.cells {
        let key = ((c.mean[0] / tile_m).floor() as i64, (c.mean[1] / tile_m).floor() as i64);
        tiles.entry(key).or_default().push(c);
    }
    crate::fsutil::replace_dir_atomic(dir, |tmp| {
        let mut entries = Vec::new();
        for ((i, j), cells) in &tiles {
            let (x, y) = (*i as f64 * tile_m, *j as f64 * tile_m);
            let file = format!("{i}_{j}.pcd");
            let mut cloud =
                PointCloud::from_positions(CloudFrame::Undeclared, cells.iter().map(|c| c.mean).collect());
            cloud.extra.insert(
                "cov".into(),
                Column {
                    components: 6,
                    values: ColumnValues::F64(cells.iter().flat_map(|c| c.cov).collect()),
                },
            );
            cloud.extra.insert(
                "count".into(),
                Column { components: 1, values: ColumnValues::U32(cells.iter().map(|c| c.count).collect()) },
            );
            write_pcd(&tmp.join(&file), &cloud, &PcdWriteOptions::new(PcdEncoding::Binary))?;
            entries.push(TileEntry { file, x, y, cells: cells.len() });
        }
        let meta = Metadata {
            format: FORMAT.into(),
            epsg: map.origin.epsg,
            origin: map.origin.origin,
            vertical_datum: map.origin.vertical_datum.to_string(),
            voxel_size_m: map.voxel_size_m,
            tile_m,
            tiles: entries,
        };
        let json = serde_json::to_string_pretty(&meta).map_err(|e| format_err(dir, e.to_string()))?;
        std::fs::write(tmp.join("metadata.json"), json)
            .map_err(|source| IoError::Os { path: tmp.join("metadata.json"), source })
    })
}

/// Reads an NDT map folder written by [`write_ndt`].
pub fn read_ndt(dir: &Path) -> Result<NdtMap, IoError> {
    let mpath = dir.join("metadata.json");
    crate::fsutil::check_input_file(&mpath)?;
    let text =
        std::fs::read_to_string(&mpath).map_err(|source| IoError::Os { path: mpath.clone(), source })?;
    let meta: Metadata = serde_json::from_str(&text).map_err(|e| format_err(&mpath, e.to_string()))?;
    if meta.format != FORMAT {
        return Err(format_err(&mpath, format!("format `{}`, expected `{FORMAT}`", meta.format)));
    }
    if !(meta.voxel_size_m.is_finite() && meta.voxel_size_m > 0.0) {
        return Err(format_err(&mpath, format!("voxel_size_m {}", meta.voxel_size_m)));
    }
    let vertical_datum =
        meta.vertical_datum.parse().map_err(|e| format_err(&mpath, format!("vertical_datum: {e}")))?;
    let origin = GeoOrigin { epsg: meta.epsg, origin: meta.origin, vertical_datum };
    let mut cells = Vec::new();
    for t in &meta.tiles {
        if t.file.contains(['/', '\\']) || t.file.starts_with('.') {
            return Err(format_err(
                &mpath,
                format!("tile file `{}` is not a name inside the folder", t.file),
            ));
        }
        let p = dir.join(&t.file);
        let cloud = read_pcd(&p)?.cloud;
        let means: Vec<[f64; 3]> = cloud.positions.iter().collect();
        let cov = match cloud.extra.get("cov").map(|c| (&c.values, c.components)) {
            Some((ColumnValues::F64(v), 6)) => v.clone(),
            Some((ColumnValues::F32(v), 6)) => v.iter().map(|x| f64::from(*x)).collect(),
            _ => return Err(format_err(&p, "no 6-component `cov` field")),
        };
        let count = match cloud.extra.get("count").map(|c| &c.values) {
            Some(ColumnValues::U32(v)) => v.clone(),
            _ => return Err(format_err(&p, "no `count` field")),
        };
        if means.len() != t.cells || cov.len() != 6 * means.len() || count.len() != means.len() {
            return Err(format_err(&p, format!("{} voxels, metadata says {}", means.len(), t.cells)));
        }
        for (k, m) in means.iter().enumerate() {
            let c: [f64; 6] = std::array::from_fn(|i| cov[6 * k + i]);
            if m.iter().chain(&c).any(|v| !v.is_finite()) {
                return Err(format_err(&p, format!("voxel {k} is not finite")));
            }
            cells.push(NdtCell { mean: *m, cov: c, count: count[k] });
        }
    }
    Ok(NdtMap { origin, voxel_size_m: meta.voxel_size_m, cells })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdmap_core::VerticalDatum;

    #[test]
    fn round_trip_and_broken_folders() {
        let dir = tempfile::tempdir().expect("tempdir");
        let origin = GeoOrigin {
            epsg: 5186,
            origin: [198500.0, 551200.0, 0.0],
            vertical_datum: VerticalDatum::Kngeoid18,
        };
        let cells: Vec<NdtCell> = (0..50)
            .map(|i| NdtCell {
                mean: [i as f64 * 7.3 - 120.0, (i % 7) as f64 * 31.0 - 90.0, 0.25 * i as f64],
                cov: [0.1, 0.01, 0.0, 0.2, -0.02, 0.001 + i as f64 * 1e-4],
                count: 6 + i as u32,
            })
            .collect();
        let map = NdtMap { origin, voxel_size_m: 1.0, cells };
        let out = dir.path().join("ndt_map");
        write_ndt(&out, &map, 100.0).expect("write");
        let mut back = read_ndt(&out).expect("read");
        let key = |c: &NdtCell| (c.mean[0].to_bits(), c.mean[1].to_bits());
        back.cells.sort_by_key(key);
        // Means are stored as f32 (sub-millimetre within 10 km of the origin), the rest exactly.
        let mut want = map.clone();
        for c in &mut want.cells {
            c.mean = c.mean.map(|v| f64::from(v as f32));
        }
        want.cells.sort_by_key(key);
        assert_eq!(back, want);
        assert!(std::fs::read_dir(&out).expect("dir").count() > 2, "several tiles");
        // A tile file that lost its voxels is refused, naming it.
        let meta: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("metadata.json")).expect("meta"))
                .expect("json");
        let first = meta["tiles"][0]["file"].as_str().expect("file").to_string();
        std::fs::write(out.join(&first), b"# .PCD v0.7\nVERSION 0.7\n").expect("write");
        let e = read_ndt(&out).expect_err("broken tile").to_string();
        assert!(e.contains(&first), "{e}");
        assert!(read_ndt(&dir.path().join("none")).is_err());
    }
}
