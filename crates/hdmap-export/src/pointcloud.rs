//! The point-cloud layer: LAZ tiles in the map's CRS, and the Autoware map directory.
//!
//! * [`write_laz_tiles`]: LAS 1.4 / LAZ, point format 6, CRS as a WKT VLR, one file per square
//!   tile of a grid anchored at the map origin (`tile_{i}_{j}.laz`, i east, j north), so tiles
//!   of later runs and other drives line up.
//! * [`write_autoware_map`]: what Autoware's map loaders read — `lanelet2_map.osm` (Autoware
//!   flavour), `pointcloud_map/` of equal, axis-aligned, non-overlapping PCD tiles in the map
//!   frame (UTM around the map origin, the frame of the OSM's `local_x`/`local_y`),
//!   `pointcloud_map_metadata.yaml` (`x_resolution`, `y_resolution`, one `name.pcd: [min_x,
//!   min_y]` line per tile) and `map_projector_info.yaml` (`LocalCartesianUTM`, the origin).
//!   The directory is built beside its destination and renamed into place, so a killed run
//!   leaves the previous map or the new one, never half of one.
//!
//! Heights are never changed: LAZ `z` and PCD `z` are heights in the layout's vertical datum,
//! like the OSM's `ele`; `map_origin.altitude` is 0.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use hdmap_core::{CloudFrame, Crs, Issues, PointCloud, Positions, RoadLayout, VerticalDatum};
use hdmap_io::fsutil::write_bytes_atomic;
use hdmap_io::las::{LasWriteOptions, write_las};
use hdmap_io::pcd::{PcdEncoding, PcdWriteOptions, write_pcd};

use crate::lanelet2::{Lanelet2Config, Lanelet2Summary, write_lanelet2};
use crate::{ExportError, MapProjection};

/// One written tile.
#[derive(Debug, Clone, PartialEq)]
pub struct Tile {
    /// File name inside its directory.
    pub file: String,
    /// Grid index (east, north).
    pub index: [i64; 2],
    /// Lower-left corner, in the frame of the tile grid (CRS for LAZ, map frame for PCD).
    pub min_xy: [f64; 2],
    /// Points in the tile.
    pub points: usize,
}

/// Points of `xy` per grid cell `floor((xy - anchor) / size)`, cells in (i, j) order.
fn grid(xy: &[[f64; 2]], anchor: [f64; 2], size: f64) -> BTreeMap<(i64, i64), Vec<usize>> {
    let mut cells: BTreeMap<(i64, i64), Vec<usize>> = BTreeMap::new();
    for (k, p) in xy.iter().enumerate() {
        let i = ((p[0] - anchor[0]) / size).floor() as i64;
        let j = ((p[1] - anchor[1]) / size).floor() as i64;
        cells.entry((i, j)).or_default().push(k);
    }
    cells
}

fn check_cloud(cloud: &PointCloud, origin_epsg: u32, tile_m: f64) -> Result<(), ExportError> {
    if !(tile_m.is_finite() && tile_m > 0.0) {
        return Err(ExportError::Layout(format!("tile size {tile_m} m: must be positive")));
    }
    match &cloud.frame {
        CloudFrame::World(c) if c.same_as(&Crs::Epsg(origin_epsg)) => {}
        other => {
            return Err(ExportError::Layout(format!(
                "point cloud in {other:?}, not in the map's CRS EPSG:{origin_epsg}: reproject it first"
            )));
        }
    }
    if let Some(i) = cloud.positions.iter().position(|p| !p.iter().all(|v| v.is_finite())) {
        return Err(ExportError::Layout(format!("point {i} has a non-finite coordinate")));
    }
    Ok(())
}

/// Writes `cloud` (world frame, the map's CRS) as LAZ tiles of `tile_m` metres into `dir`,
/// each atomically. Fails naming the problem on a cloud in another frame or with NaNs.
pub fn write_laz_tiles(
    dir: &Path,
    cloud: &PointCloud,
    origin: &hdmap_core::GeoOrigin,
    tile_m: f64,
) -> Result<Vec<Tile>, ExportError> {
    check_cloud(cloud, origin.epsg, tile_m)?;
    std::fs::create_dir_all(dir)
        .map_err(|source| hdmap_io::IoError::Os { path: dir.to_path_buf(), source })?;
    let xy: Vec<[f64; 2]> = cloud.positions.iter().map(|p| [p[0], p[1]]).collect();
    let anchor = [origin.origin[0], origin.origin[1]];
    let mut tiles = Vec::new();
    for ((i, j), idx) in grid(&xy, anchor, tile_m) {
        let part = cloud.select(&idx);
        let file = format!("tile_{i}_{j}.laz");
        let mut opts = LasWriteOptions::for_cloud(&part);
        opts.crs = Some(Crs::Epsg(origin.epsg));
        write_las(&dir.join(&file), &part, &opts)?;
        let min_xy = [anchor[0] + i as f64 * tile_m, anchor[1] + j as f64 * tile_m];
        tiles.push(Tile { file, index: [i, j], min_xy, points: idx.len() });
    }
    Ok(tiles)
}

/// What [`write_autoware_map`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct AutowareSummary {
    /// The Lanelet2 file.
    pub lanelet2: Lanelet2Summary,
    /// PCD tiles (map frame).
    pub tiles: Vec<Tile>,
    /// The map projection written to `map_projector_info.yaml`.
    pub projection: MapProjection,
}

/// Autoware's name of a vertical datum, where it has one.
fn autoware_vertical_datum(v: VerticalDatum) -> String {
    match v {
        VerticalDatum::Ellipsoidal => "WGS84".into(),
        VerticalDatum::Egm2008 => "EGM2008".into(),
        other => other.to_string(),
    }
}

/// Writes the Autoware map directory `dir`: `lanelet2_map.osm`, `pointcloud_map/*.pcd`,
/// `pointcloud_map_metadata.yaml`, `map_projector_info.yaml` (see the module docs). With no
/// cloud, the point-cloud part is left out.
pub fn write_autoware_map(
    dir: &Path,
    layout: &RoadLayout,
    cloud: Option<&PointCloud>,
    tile_m: f64,
    lanelet2: &Lanelet2Config,
    issues: &mut Issues,
) -> Result<AutowareSummary, ExportError> {
    let proj = MapProjection::for_origin(&layout.origin)?;
    if let Some(c) = cloud {
        check_cloud(c, layout.origin.epsg, tile_m)?;
    }
    let os = |path: &Path| {
        let path = path.to_path_buf();
        move |source| hdmap_io::IoError::Os { path: path.clone(), source }
    };
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(os(&parent))?;
    let name =
        dir.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| "autoware_map".into());
    let staging =
        tempfile::Builder::new().prefix(&format!(".{name}.")).tempdir_in(&parent).map_err(os(&parent))?;
    let tmp = staging.path();

    let lanelet2 = write_lanelet2(&tmp.join("lanelet2_map.osm"), layout, lanelet2, issues)?;
    let mut tiles = Vec::new();
    if let Some(cloud) = cloud {
        let pc_dir = tmp.join("pointcloud_map");
        std::fs::create_dir_all(&pc_dir).map_err(os(&pc_dir))?;
        let mut local: Vec<[f64; 2]> = cloud.positions.iter().map(|p| [p[0], p[1]]).collect();
        proj.to_local(&mut local)?;
        for ((i, j), idx) in grid(&local, [0.0, 0.0], tile_m) {
            let pts: Vec<[f64; 3]> =
                idx.iter().map(|&k| [local[k][0], local[k][1], cloud.positions.get(k)[2]]).collect();
            let mut part = cloud.select(&idx);
            part.positions = Positions::Absolute(pts);
            part.frame = CloudFrame::Undeclared; // the map frame: PCD has no CRS field
            let file = format!("pointcloud_map_{i}_{j}.pcd");
            write_pcd(&pc_dir.join(&file), &part, &PcdWriteOptions::new(PcdEncoding::Binary))?;
            tiles.push(Tile {
                file,
                index: [i, j],
                min_xy: [i as f64 * tile_m, j as f64 * tile_m],
                points: idx.len(),
            });
        }
        let mut meta = format!("x_resolution: {tile_m:.3}\ny_resolution: {tile_m:.3}\n");
        for t in &tiles {
            let _ = writeln!(meta, "{}: [{:.3}, {:.3}]", t.file, t.min_xy[0], t.min_xy[1]);
        }
        write_bytes_atomic(&tmp.join("pointcloud_map_metadata.yaml"), meta.as_bytes())?;
    }
    let info = format!(
        "# Written by hdmap: map frame = UTM zone EPSG:{} minus the origin's UTM coordinates;\n\
         # heights (OSM ele, PCD z) are in the layout's vertical datum ({}), not shifted.\n\
         # Source CRS of the layout: EPSG:{}.\n\
         projector_type: LocalCartesianUTM\nvertical_datum: {}\nmap_origin:\n  latitude: {:.11}\n  longitude: {:.11}\n  altitude: 0.0\n",
        proj.utm_epsg,
        layout.origin.vertical_datum,
        layout.origin.epsg,
        autoware_vertical_datum(layout.origin.vertical_datum),
        proj.origin_lat_deg,
        proj.origin_lon_deg
    );
    write_bytes_atomic(&tmp.join("map_projector_info.yaml"), info.as_bytes())?;

    // Swap the finished directory into place.
    let staged = staging.keep();
    let old = parent.join(format!(".{name}.old"));
    if dir.exists() {
        if old.exists() {
            std::fs::remove_dir_all(&old).map_err(os(&old))?;
        }
        std::fs::rename(dir, &old).map_err(os(dir))?;
    }
    std::fs::rename(&staged, dir).map_err(os(dir))?;
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(os(&old))?;
    }
    Ok(AutowareSummary { lanelet2, tiles, projection: proj })
}
