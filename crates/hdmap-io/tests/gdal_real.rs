//! Rasters and vector layers through GDAL, on the real aerial samples.

use hdmap_core::Crs;
use hdmap_io::raster::{Raster, Window};
use hdmap_io::testdata::shared_data;
use hdmap_io::vector::{Geom, read_vector, vector_info};

#[test]
fn usgs_orthophoto_is_15cm_utm13() {
    let Some(p) = shared_data("aerial/usgs_hro_colorado_15cm/201404_13SED190110_201404_0x1500m_CL_1.tif")
    else {
        return;
    };
    let r = Raster::open(&p).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((r.info.width, r.info.height, r.info.bands.len()), (383, 232, 3));
    assert_eq!(r.info.crs.as_ref().and_then(Crs::epsg), Some(26913));
    let gsd = r.info.gsd_m.expect("projected raster has a GSD");
    assert!((gsd - 0.15).abs() < 0.001, "GSD {gsd}");
    // Windowed reads agree with the full band.
    let full: Vec<u8> = r.read_window(1, Window { col: 0, row: 0, width: 383, height: 232 }).expect("full");
    for w in r.tiles(100, 8) {
        let tile: Vec<u8> = r.read_window(1, w).expect("tile");
        for rr in 0..w.height {
            for cc in 0..w.width {
                assert_eq!(tile[rr * w.width + cc], full[(w.row + rr) * 383 + w.col + cc]);
            }
        }
    }
    // Georeferencing round trip and the file's own bounds.
    let g = r.georef().expect("georeferenced");
    let b = r.info.bounds.expect("bounds");
    let [x, y] = g.pixel_to_world(383.0, 232.0);
    assert!((x - b[2]).abs() < 1e-6 && (y - b[1]).abs() < 1e-6);
}

#[test]
fn spacenet_tiles_are_30cm_wgs84_with_road_centrelines() {
    let Some(dir) = shared_data("aerial") else { return };
    for rel in [
        "spacenet3_vegas_rgb_30cm/RGB-PanSharpen_AOI_2_Vegas_img0.tif",
        "spacenet3_vegas_pan_30cm/road_mask_input_PAN.tif",
    ] {
        let r = Raster::open(&dir.join(rel)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.info.crs.as_ref().and_then(Crs::epsg), Some(4326), "{rel}");
        assert_eq!((r.info.width, r.info.height), (1300, 1300));
        let gsd = r.info.gsd_m.expect("GSD");
        assert!((gsd - 0.30).abs() < 0.01, "{rel}: GSD {gsd}");
    }
    let gt = dir.join("spacenet3_vegas_rgb_30cm/AOI_2_Vegas_img0_roads_gt.geojson");
    let info = vector_info(&gt).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(info.layers.len(), 1);
    assert_eq!(info.layers[0].feature_count, 38);
    let layers = read_vector(&gt).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(layers[0].crs.as_ref().and_then(Crs::epsg), Some(4326));
    let raster = Raster::open(&dir.join("spacenet3_vegas_rgb_30cm/RGB-PanSharpen_AOI_2_Vegas_img0.tif"))
        .expect("open");
    let b = raster.info.bounds.expect("bounds");
    // The ground truth lies on the image it annotates (roads are cut near the tile edge, so a
    // few end vertices overhang it by metres, never more than ~10 m = 1e-4°).
    let mut inside = 0;
    let mut total = 0;
    for f in &layers[0].features {
        if let Some(Geom::LineString(pts)) = &f.geometry {
            for p in pts {
                total += 1;
                let tol = 1e-4;
                assert!(p[0] > b[0] - tol && p[0] < b[2] + tol && p[1] > b[1] - tol && p[1] < b[3] + tol);
                inside += (p[0] >= b[0] - 1e-6
                    && p[0] <= b[2] + 1e-6
                    && p[1] >= b[1] - 1e-6
                    && p[1] <= b[3] + 1e-6) as usize;
            }
        }
    }
    assert!(total > 38 && inside * 100 >= total * 95, "{inside}/{total} vertices on the tile");
}

#[test]
fn autzen_jpeg_with_world_file_opens_as_a_raster() {
    let Some(p) = shared_data("las_laz/pdal_tests/autzen.jpg") else { return };
    let r = Raster::open(&p).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((r.info.width, r.info.height), (3248, 4385));
    assert!(r.info.geo_transform.is_some(), "world file read");
    // No .prj: the CRS is unknown, and a stage asking for georeferencing is refused.
    assert!(r.info.crs.is_none());
    let err = r.georef().expect_err("no CRS");
    assert!(err.to_string().contains("autzen.jpg"), "{err}");
}
