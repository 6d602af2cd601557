//! hdmap-export: the map's layers in the formats their consumers already load.
//!
//! * [`lanelet2`]: the road layout as a Lanelet2 OSM map in the Autoware flavour (WGS84 nodes
//!   with `ele`, `local_x`, `local_y`; lanelets with boundary subtypes, stop lines and road
//!   markings as regulatory elements).
//! * [`pointcloud`]: the point-cloud layer as LAZ tiles, and the Autoware map directory
//!   (`lanelet2_map.osm`, `pointcloud_map/` PCD tiles with their metadata,
//!   `map_projector_info.yaml`).
//! * [`projection`]: the map frame consumers project into (UTM around the map origin).
//!
//! Every writer is atomic (temporary file + rename) and takes the map origin explicitly.

pub mod lanelet2;
pub mod ngii;
pub mod opendrive;
pub mod pointcloud;
pub mod projection;

pub use lanelet2::{Flavour, Lanelet2Config, Lanelet2Summary, write_lanelet2};
pub use ngii::{NgiiConfig, NgiiSummary, write_ngii};
pub use opendrive::{OpenDriveConfig, OpenDriveSummary, write_opendrive};
pub use pointcloud::{AutowareSummary, Tile, write_autoware_map, write_laz_tiles};
pub use projection::MapProjection;

/// Settings of `hdmap export` (the `[export]` section of a pipeline config).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExportConfig {
    /// Lanelet2 writing.
    pub lanelet2: Lanelet2Config,
    /// The NGII / NAVER LABS shapefiles.
    pub ngii: NgiiConfig,
    /// The OpenDRIVE 1.8 file.
    pub opendrive: OpenDriveConfig,
    /// Side of the Autoware PCD tiles, metres (Autoware recommends about 20 m; above 100 m
    /// dynamic map loading suffers).
    pub pcd_tile_m: f64,
    /// Side of the LAZ tiles, metres.
    pub laz_tile_m: f64,
}

impl Default for ExportConfig {
    fn default() -> Self {
        Self {
            lanelet2: Lanelet2Config::default(),
            ngii: NgiiConfig::default(),
            opendrive: OpenDriveConfig::default(),
            pcd_tile_m: 20.0,
            laz_tile_m: 100.0,
        }
    }
}

impl ExportConfig {
    /// Checks every value; the message names the key.
    pub fn validate(&self) -> Result<(), ExportError> {
        self.lanelet2.validate()?;
        self.ngii.validate()?;
        self.opendrive.validate()?;
        for (key, v) in [("pcd_tile_m", self.pcd_tile_m), ("laz_tile_m", self.laz_tile_m)] {
            if !(v.is_finite() && v > 0.0) {
                return Err(ExportError::Layout(format!(
                    "export.{key} = {v}: must be a positive number of metres"
                )));
            }
        }
        Ok(())
    }
}

/// What [`export_map`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportSummary {
    /// `road_layout/lanelet2_map.osm`.
    pub lanelet2: Lanelet2Summary,
    /// `road_layout/ngii/` shapefiles.
    pub ngii: NgiiSummary,
    /// `road_layout/map.xodr`.
    pub opendrive: OpenDriveSummary,
    /// `pointcloud/` LAZ tiles (empty without a cloud).
    pub laz_tiles: Vec<Tile>,
    /// `autoware_map/`.
    pub autoware: AutowareSummary,
}

/// Writes every layer of a map into `out`: `road_layout/` (lanelet2_map.osm, layout.gpkg,
/// layout.geojson, map.xodr, `ngii/` shapefiles), `pointcloud/` (LAZ tiles, with a cloud) and `autoware_map/`.
///
/// The layout must validate (errors name the first findings); the cloud must be in the
/// layout's CRS. Findings the map can live with go to `issues`.
pub fn export_map(
    out: &std::path::Path,
    layout: &hdmap_core::RoadLayout,
    cloud: Option<&hdmap_core::PointCloud>,
    config: &ExportConfig,
    issues: &mut hdmap_core::Issues,
) -> Result<ExportSummary, ExportError> {
    config.validate()?;
    let mut v = hdmap_core::Issues::new();
    if layout.validate(&mut v) > 0 {
        let first: Vec<String> = v.iter().take(3).map(|i| i.to_string()).collect();
        return Err(ExportError::Layout(format!("invalid layout: {}", first.join("; "))));
    }
    if cloud.is_some_and(|c| c.is_empty()) {
        return Err(ExportError::Layout("the point cloud is empty".into()));
    }
    let road = out.join("road_layout");
    std::fs::create_dir_all(&road).map_err(|source| hdmap_io::IoError::Os { path: road.clone(), source })?;
    hdmap_io::layout::write_layout_gpkg(&road.join("layout.gpkg"), layout)?;
    hdmap_io::layout::write_layout_geojson(&road.join("layout.geojson"), layout)?;
    let lanelet2 = write_lanelet2(&road.join("lanelet2_map.osm"), layout, &config.lanelet2, issues)?;
    let opendrive = write_opendrive(&road.join("map.xodr"), layout, &config.opendrive, issues)?;
    let ngii = if config.ngii.enabled {
        write_ngii(&road.join("ngii"), layout, &config.ngii, issues)?
    } else {
        NgiiSummary::default()
    };
    let laz_tiles = match cloud {
        Some(c) => write_laz_tiles(&out.join("pointcloud"), c, &layout.origin, config.laz_tile_m)?,
        None => Vec::new(),
    };
    let autoware = write_autoware_map(
        &out.join("autoware_map"),
        layout,
        cloud,
        config.pcd_tile_m,
        &config.lanelet2,
        issues,
    )?;
    Ok(ExportSummary { lanelet2, ngii, opendrive, laz_tiles, autoware })
}

/// Errors of the exporters; each names the file or element concerned.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Reading or writing a file failed.
    #[error(transparent)]
    Io(#[from] hdmap_io::IoError),
    /// A model value is invalid (non-finite origin, …).
    #[error(transparent)]
    Core(#[from] hdmap_core::CoreError),
    /// The map origin or a coordinate cannot be projected.
    #[error("projection: {0}")]
    Projection(String),
    /// The layout cannot be written as asked (names the element).
    #[error("{0}")]
    Layout(String),
}
