//! The layout stage on real aerial imagery from `../shared/data/aerial/`: the USGS 15 cm tile
//! (parking-stall lines) and the SpaceNet 30 cm Las Vegas tile (geographic CRS), whose road
//! centre-line ground truth our road centre lines are scored against.

use hdmap_core::{Issues, VerticalDatum};
use hdmap_layout::LayoutConfig;

fn spacenet_truth_utm(path: &std::path::Path, epsg: u32) -> Vec<Vec<[f64; 2]>> {
    let layers = hdmap_io::vector::read_vector(path).expect("read SpaceNet ground truth");
    let mut out = Vec::new();
    for l in layers {
        for f in l.features {
            let lines = match f.geometry {
                Some(hdmap_io::vector::Geom::LineString(l)) => vec![l],
                Some(hdmap_io::vector::Geom::MultiLineString(ls)) => ls,
                _ => continue,
            };
            for l in lines {
                let mut pts: Vec<[f64; 2]> = l.iter().map(|p| [p[0], p[1]]).collect();
                hdmap_io::crs::transform_points(4326, epsg, &mut pts).expect("to UTM");
                out.push(pts);
            }
        }
    }
    out
}

#[test]
fn spacenet_tile_runs_in_utm_and_its_road_centre_lines_agree_with_the_ground_truth() {
    let Some(dir) = hdmap_io::testdata::shared_data("aerial/spacenet3_vegas_rgb_30cm") else { return };
    let ortho = dir.join("RGB-PanSharpen_AOI_2_Vegas_img0.tif");
    let mut issues = Issues::new();
    let layout = hdmap_layout::extract_layout(
        &ortho,
        None,
        VerticalDatum::Egm2008,
        &LayoutConfig::default(),
        &mut issues,
    )
    .expect("layout of a geographic 30 cm tile");
    // Las Vegas is in UTM zone 11 north.
    assert_eq!(layout.origin.epsg, 32611);
    assert!(
        issues.iter().any(|i| i.to_string().contains("reprojected to EPSG:32611")),
        "the reprojection is reported"
    );
    let truth = spacenet_truth_utm(&dir.join("AOI_2_Vegas_img0_roads_gt.geojson"), 32611);
    assert_eq!(truth.len(), 38);
    let pred: Vec<Vec<[f64; 2]>> =
        layout.road_centerlines.iter().map(|c| c.points.iter().map(|p| [p.x, p.y]).collect()).collect();
    let a = hdmap_eval::layout::polyline_agreement(&pred, &truth, 3.0);
    eprintln!(
        "SpaceNet road centre lines within 3 m: precision {:.3} recall {:.3} F1 {:.3} ({:.0} m predicted, {:.0} m truth)",
        a.precision, a.recall, a.f1, a.predicted_m, a.truth_m
    );
    // Regression floor, a little under what the classical road mask achieves (measured
    // precision 0.40, recall 0.31: parked cars break parking-aisle masks; see BENCHMARK.md).
    assert!(a.precision > 0.33 && a.recall > 0.25, "{a:?}");
    // And the same lines moved 10 m diagonally score lower (the metric can fail). The margin is
    // modest: the predicted network is dense (parking aisles) on a grid city, so a shifted copy
    // still meets other streets by chance (measured F1 0.25 shifted vs 0.35 in place).
    let shifted: Vec<Vec<[f64; 2]>> =
        pred.iter().map(|l| l.iter().map(|p| [p[0] + 7.0, p[1] + 7.0]).collect()).collect();
    let b = hdmap_eval::layout::polyline_agreement(&shifted, &truth, 3.0);
    assert!(b.f1 < 0.8 * a.f1, "shifted {b:?} vs {a:?}");
}

#[test]
fn usgs_tile_runs_and_finds_its_parking_stall_lines() {
    let Some(dir) = hdmap_io::testdata::shared_data("aerial/usgs_hro_colorado_15cm") else { return };
    let ortho = dir.join("201404_13SED190110_201404_0x1500m_CL_1.tif");
    let mut issues = Issues::new();
    let layout = hdmap_layout::extract_layout(
        &ortho,
        None,
        VerticalDatum::Navd88,
        &LayoutConfig::default(),
        &mut issues,
    )
    .expect("layout of the USGS tile");
    assert_eq!(layout.origin.epsg, 26913);
    // Every vertex lies inside the tile.
    let r = hdmap_io::raster::Raster::open(&ortho).expect("open");
    let b = r.info.bounds.expect("bounds");
    for (_, _, pts) in layout.geometries() {
        for p in pts {
            assert!(
                p.x >= b[0] - 1.0 && p.x <= b[2] + 1.0 && p.y >= b[1] - 1.0 && p.y <= b[3] + 1.0,
                "{p:?} outside {b:?}"
            );
        }
    }
    eprintln!(
        "USGS tile: {} lane boundaries, {} road centre lines",
        layout.lane_boundaries.len(),
        layout.road_centerlines.len()
    );
}
