//! The point-cloud layer: laspy reads every LAZ tile with our CRS and every point lands in its
//! tile; the Autoware directory's PCD tiles are equal, axis-aligned, non-overlapping, listed in
//! the metadata, in the map frame that pyproj computes, and hold every point once.

use std::collections::BTreeMap;
use std::ffi::OsStr;

use hdmap_core::nalgebra::Point3;
use hdmap_core::{
    BoundaryRef, CloudFrame, Crs, ElementId, GeoOrigin, Issues, Lane, LaneBoundary, LaneKind, LineType,
    MarkingColor, PointCloud, RoadLayout, VerticalDatum,
};
use hdmap_export::{Lanelet2Config, write_autoware_map, write_laz_tiles};
use hdmap_io::testdata::run_python;
use rand::{Rng, SeedableRng};
use serde_json::Value;

fn origin() -> GeoOrigin {
    GeoOrigin::new(5186, [198_500.0, 551_200.0, 30.0], VerticalDatum::Kngeoid18).expect("origin")
}

/// 40 000 seeded random points over 130 m × 90 m around the origin, with intensity.
fn cloud() -> PointCloud {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let o = origin().origin;
    let pts: Vec<[f64; 3]> = (0..40_000)
        .map(|_| {
            [
                o[0] - 30.0 + rng.random::<f64>() * 130.0,
                o[1] - 20.0 + rng.random::<f64>() * 90.0,
                30.0 + rng.random::<f64>() * 5.0,
            ]
        })
        .collect();
    let mut c = PointCloud::from_positions(CloudFrame::World(Crs::Epsg(5186)), pts);
    c.intensity = Some((0..40_000).map(|i| (i % 255) as f32).collect());
    c
}

fn one_lane_layout() -> RoadLayout {
    let o = origin().origin;
    let mut l = RoadLayout::new(origin());
    for (id, y) in [(1u64, 0.0), (2, 3.5)] {
        l.lane_boundaries.push(LaneBoundary {
            id: ElementId(id),
            line_type: LineType::Solid,
            color: MarkingColor::White,
            width_m: 0.15,
            dash: None,
            points: vec![Point3::new(o[0], o[1] + y, 30.0), Point3::new(o[0] + 60.0, o[1] + y, 30.5)],
        });
    }
    l.lanes.push(Lane {
        id: ElementId(10),
        left: BoundaryRef { id: ElementId(2), reversed: false },
        right: BoundaryRef { id: ElementId(1), reversed: false },
        center_line: vec![Point3::new(o[0], o[1] + 1.75, 30.0), Point3::new(o[0] + 60.0, o[1] + 1.75, 30.5)],
        successors: vec![],
        left_neighbour: None,
        right_neighbour: None,
        stop_line: None,
        in_intersection: false,
        kind: LaneKind::Road,
        bidirectional: false,
    });
    l
}

#[test]
fn laz_tiles_are_read_by_laspy_with_their_crs_and_bounds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = cloud();
    let tile_m = 50.0;
    let tiles = write_laz_tiles(dir.path(), &c, &origin(), tile_m).expect("tiles");
    let r: Value =
        serde_json::from_str(&run_python("laz_tiles_check.py", &[dir.path().as_os_str()])).expect("json");
    let files = r.as_object().expect("object");
    assert_eq!(files.len(), tiles.len());
    assert_eq!(tiles.len(), 9, "130 m × 90 m from −30/−20 m: 3 × 3 tiles of 50 m");
    let mut total = 0;
    for t in &tiles {
        let f = &files[&t.file];
        assert_eq!(f["epsg"].as_u64(), Some(5186), "{}", t.file);
        assert_eq!(f["points"].as_u64(), Some(t.points as u64));
        assert_eq!(f["header_points"], f["points"]);
        assert_eq!(f["version"].as_str(), Some("1.4"));
        for k in 0..2 {
            let (lo, hi) =
                (f["min"][k].as_f64().unwrap_or(f64::NAN), f["max"][k].as_f64().unwrap_or(f64::NAN));
            // Millimetre quantisation may put a point on the tile's far edge.
            assert!(
                lo >= t.min_xy[k] - 1e-3 && hi <= t.min_xy[k] + tile_m + 1e-3,
                "{} axis {k}: {lo}..{hi}",
                t.file
            );
        }
        total += t.points;
    }
    assert_eq!(total, c.len());
    // A cloud in another frame is refused, naming the problem.
    let mut wrong = cloud();
    wrong.frame = CloudFrame::World(Crs::Epsg(32652));
    let e = write_laz_tiles(dir.path(), &wrong, &origin(), tile_m).expect_err("wrong CRS");
    assert!(e.to_string().contains("EPSG:5186"), "{e}");
}

#[test]
fn autoware_directory_tiles_cover_every_point_once_in_the_map_frame() {
    let dir = tempfile::tempdir().expect("tempdir");
    let map = dir.path().join("autoware_map");
    let c = cloud();
    let layout = one_lane_layout();
    let mut issues = Issues::new();
    let tile_m = 20.0;
    let s = write_autoware_map(&map, &layout, Some(&c), tile_m, &Lanelet2Config::default(), &mut issues)
        .expect("autoware map");
    for f in ["lanelet2_map.osm", "pointcloud_map_metadata.yaml", "map_projector_info.yaml"] {
        assert!(map.join(f).is_file(), "{f} missing");
    }
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .expect("list")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n != "autoware_map")
        .collect();
    assert!(leftovers.is_empty(), "staging left behind: {leftovers:?}");

    // Metadata: resolution, one line per tile file, lower-left corners on the grid.
    let meta = std::fs::read_to_string(map.join("pointcloud_map_metadata.yaml")).expect("metadata");
    assert!(meta.contains("x_resolution: 20.000") && meta.contains("y_resolution: 20.000"), "{meta}");
    let mut listed: BTreeMap<String, [f64; 2]> = BTreeMap::new();
    for line in meta.lines().filter(|l| l.contains(".pcd:")) {
        let (name, rest) = line.split_once(':').expect("name: [x, y]");
        let v: Vec<f64> = rest
            .trim()
            .trim_matches(|c| c == '[' || c == ']')
            .split(',')
            .map(|x| x.trim().parse().expect("number"))
            .collect();
        assert!((v[0] / tile_m).fract().abs() < 1e-9 && (v[1] / tile_m).fract().abs() < 1e-9, "{line}");
        listed.insert(name.to_string(), [v[0], v[1]]);
    }
    let files: Vec<String> = std::fs::read_dir(map.join("pointcloud_map"))
        .expect("pointcloud_map")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(files.len(), listed.len());
    assert_eq!(files.len(), s.tiles.len());

    // Every point once, inside its tile, at the map-frame position pyproj computes.
    let mut total = 0;
    let mut local_pts: Vec<[f64; 3]> = Vec::new();
    for (name, min) in &listed {
        let f = hdmap_io::pcd::read_pcd(&map.join("pointcloud_map").join(name)).expect("read tile");
        for p in f.cloud.positions.iter() {
            assert!(
                p[0] >= min[0] - 1e-3
                    && p[0] < min[0] + tile_m + 1e-3
                    && p[1] >= min[1] - 1e-3
                    && p[1] < min[1] + tile_m + 1e-3,
                "{name}: {p:?}"
            );
            local_pts.push(p);
        }
        total += f.cloud.len();
    }
    assert_eq!(total, c.len());
    let pts_file = dir.path().join("pts.txt");
    let text: String = c.positions.iter().map(|p| format!("{:.4} {:.4}\n", p[0], p[1])).collect();
    std::fs::write(&pts_file, text).expect("points");
    let o = origin().origin;
    let (ox, oy) = (format!("{}", o[0]), format!("{}", o[1]));
    let utm = s.projection.utm_epsg.to_string();
    let reference = run_python(
        "utm_local.py",
        &[OsStr::new("5186"), OsStr::new(&utm), OsStr::new(&ox), OsStr::new(&oy), pts_file.as_os_str()],
    );
    // Our map frame, point by point, against pyproj (1 mm).
    let want: Vec<[f64; 2]> = reference
        .lines()
        .map(|l| {
            let v: Vec<f64> = l.split_whitespace().map(|x| x.parse().expect("number")).collect();
            [v[0], v[1]]
        })
        .collect();
    let mut ours: Vec<[f64; 2]> = c.positions.iter().map(|p| [p[0], p[1]]).collect();
    s.projection.to_local(&mut ours).expect("local");
    assert_eq!(want.len(), ours.len());
    let worst = ours.iter().zip(&want).map(|(a, b)| (a[0] - b[0]).hypot(a[1] - b[1])).fold(0.0, f64::max);
    assert!(worst < 1e-3, "map frame differs from pyproj's UTM − UTM(origin) by {worst} m");
    // The tiles hold exactly those points (as the f32 PCD stores them), each once.
    let key = |x: f64, y: f64, z: f64| [(x as f32).to_bits(), (y as f32).to_bits(), (z as f32).to_bits()];
    let mut expect: Vec<[u32; 3]> =
        ours.iter().zip(c.positions.iter()).map(|(l, p)| key(l[0], l[1], p[2])).collect();
    let mut got: Vec<[u32; 3]> = local_pts.iter().map(|p| key(p[0], p[1], p[2])).collect();
    expect.sort_unstable();
    got.sort_unstable();
    assert!(expect == got, "PCD tiles do not hold every point once");

    let info = std::fs::read_to_string(map.join("map_projector_info.yaml")).expect("projector info");
    assert!(info.contains("projector_type: LocalCartesianUTM"), "{info}");
    assert!(info.contains(&format!("latitude: {:.11}", s.projection.origin_lat_deg)), "{info}");
    assert_eq!(s.projection.utm_epsg, 32652);

    // Writing again replaces the directory whole.
    write_autoware_map(&map, &layout, None, tile_m, &Lanelet2Config::default(), &mut issues).expect("again");
    assert!(!map.join("pointcloud_map").exists(), "the old tiles went with the old directory");
}
