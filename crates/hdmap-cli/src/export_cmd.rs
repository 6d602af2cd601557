//! `hdmap export`: the road layout and the point cloud in the formats consumers load.

use std::path::PathBuf;

use anyhow::Context;
use hdmap_core::{Issues, RoadLayout, VerticalDatum};
use hdmap_export::ExportConfig;

/// Arguments of `hdmap export`.
#[derive(clap::Args)]
pub struct ExportArgs {
    /// Road layout: GeoPackage or GeoJSON written by hdmap, or a Lanelet2 OSM map.
    #[arg(long)]
    pub layout: PathBuf,
    /// Point cloud in the layout's CRS (LAS/LAZ), e.g. `hdmap register`'s cloud.laz.
    #[arg(long)]
    pub cloud: Option<PathBuf>,
    /// Output directory: road_layout/, pointcloud/ (LAZ tiles), autoware_map/.
    #[arg(long)]
    pub out: PathBuf,
    /// For a Lanelet2 OSM input: the datum of its `ele` heights (the file does not say).
    #[arg(long)]
    pub vertical_datum: Option<VerticalDatum>,
    /// For a Lanelet2 OSM input: the projected CRS to read it into (default: its UTM zone).
    #[arg(long)]
    pub epsg: Option<u32>,
    /// Export settings (TOML, the keys of `[export]`; unknown keys are errors).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

fn read_layout(a: &ExportArgs, issues: &mut Issues) -> anyhow::Result<RoadLayout> {
    read_layout_file(&a.layout, Some((a.epsg, a.vertical_datum)), issues)
}

/// A road layout from `.gpkg`, `.geojson` or, when `osm` gives its (EPSG, height datum)
/// settings, a Lanelet2 `.osm`.
pub(crate) fn read_layout_file(
    path: &std::path::Path,
    osm: Option<(Option<u32>, Option<hdmap_core::VerticalDatum>)>,
    issues: &mut Issues,
) -> anyhow::Result<RoadLayout> {
    let ext = path.extension().map(|e| e.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
    Ok(match (ext.as_str(), osm) {
        ("gpkg", _) => hdmap_io::layout::read_layout_gpkg(path)?,
        ("geojson" | "json", _) => hdmap_io::layout::read_layout_geojson(path)?,
        ("osm", Some((epsg, vertical_datum))) => {
            let vertical_datum = vertical_datum.with_context(|| {
                format!(
                    "{}: a Lanelet2 map does not say its height datum: pass --vertical-datum",
                    path.display()
                )
            })?;
            let import = hdmap_io::osm::Lanelet2Import { epsg, vertical_datum };
            hdmap_io::osm::read_lanelet2(path, &import, issues)?.layout
        }
        ("osm", None) => anyhow::bail!(
            "{}: a Lanelet2 map is read by `hdmap export`; give .gpkg or .geojson",
            path.display()
        ),
        _ => anyhow::bail!("{}: not a road layout (expected .gpkg, .geojson or .osm)", path.display()),
    })
}

/// Runs `hdmap export`.
pub fn export(a: &ExportArgs) -> anyhow::Result<()> {
    let mut cfg: ExportConfig = crate::read_config(a.config.as_deref())?;
    // Paths in the config are relative to its folder.
    if let (Some(grid), Some(base)) = (&cfg.ngii.geoid_grid, a.config.as_deref().and_then(|p| p.parent()))
        && grid.is_relative()
    {
        cfg.ngii.geoid_grid = Some(base.join(grid));
    }
    cfg.validate().with_context(|| a.config.as_ref().map(|p| p.display().to_string()).unwrap_or_default())?;
    let mut issues = Issues::new();
    let layout = read_layout(a, &mut issues)?;
    let cloud = match &a.cloud {
        Some(p) => Some(hdmap_io::las::read_las(p, |_| {})?.cloud),
        None => None,
    };
    let s =
        hdmap_export::export_map(&a.out, &layout, cloud.as_ref(), &cfg, &mut issues).with_context(|| {
            format!(
                "{}{}",
                a.layout.display(),
                a.cloud.as_ref().map(|c| format!(" + {}", c.display())).unwrap_or_default()
            )
        })?;
    let l2 = &s.lanelet2;
    println!(
        "road layout: {} lanelets, {} ways, {} nodes, {} regulatory elements → {}",
        l2.lanelets,
        l2.ways,
        l2.nodes,
        l2.regulatory_elements,
        a.out.join("road_layout").display()
    );
    println!(
        "road layout: successor ends joined up to {:.2} m apart; {} successor pairs not joined, {} neighbour \
         pairs not sharing their line, {} lane pairs sharing a bound on one side (each listed as a warning)",
        l2.max_join_m,
        l2.unjoined_successors.len(),
        l2.unshared_neighbours.len(),
        l2.overlapping_lanes.len()
    );
    let od = &s.opendrive;
    println!(
        "OpenDRIVE 1.8: {} roads ({} in {} junctions), {} lanes; reference line within {:.1} cm, lane boundaries \
         within {:.1} cm of the layout → {}",
        od.roads,
        od.connecting_roads,
        od.junctions,
        od.lanes,
        od.max_reference_error_m * 100.0,
        od.max_boundary_error_m * 100.0,
        a.out.join("road_layout/map.xodr").display()
    );
    if s.ngii.layers.is_empty() {
        println!(
            "NGII shapefiles: not written ({})",
            s.ngii.skipped.values().next().map_or("disabled", |v| v)
        );
    } else {
        println!(
            "NGII shapefiles: {} in EPSG:{}, ellipsoidal heights ({}) → {}",
            s.ngii.layers.iter().map(|(l, n)| format!("{l} {n}")).collect::<Vec<_>>().join(", "),
            cfg.ngii.epsg,
            s.ngii.height_source,
            a.out.join("road_layout/ngii").display()
        );
    }
    if let Some(c) = &cloud {
        println!(
            "point cloud: {} points in {} LAZ tiles of {} m → {}",
            c.len(),
            s.laz_tiles.len(),
            cfg.laz_tile_m,
            a.out.join("pointcloud").display()
        );
    }
    let aw = &s.autoware;
    println!(
        "autoware map: lanelet2_map.osm + {} PCD tiles of {} m, origin {:.8}° {:.8}° (UTM EPSG:{}) → {}",
        aw.tiles.len(),
        cfg.pcd_tile_m,
        aw.projection.origin_lat_deg,
        aw.projection.origin_lon_deg,
        aw.projection.utm_epsg,
        a.out.join("autoware_map").display()
    );
    for i in issues.iter() {
        tracing::warn!("{i}");
    }
    Ok(())
}
