//! GDAL's `ogrinfo` reads our NGII / NAVER LABS shapefiles and GeoPackage: the simulator's truth
//! layout goes out as shapefiles in WGS84 / UTM 52N with ellipsoidal heights, `ogrinfo` lists
//! every layer with the layout's element counts, and its vertices, reprojected back by pyproj,
//! land on the truth geometry; the links' node ids reproduce the truth successors.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;

use hdmap_core::{Issues, VerticalDatum};
use hdmap_export::{NgiiConfig, write_ngii};
use hdmap_io::testdata::{repo_root, run_python};
use serde_json::Value;

fn ogrinfo(args: &[&OsStr]) -> Value {
    serde_json::from_str(&run_python("ngii_check.py", args)).expect("ngii_check.py prints JSON")
}

#[test]
fn ogrinfo_reads_the_ngii_shapefiles_and_they_land_on_the_truth() {
    let cfg = hdmap_sim::load_config(&repo_root().join("configs/sim/demo.toml")).expect("demo config");
    let layout = hdmap_sim::World::build(&cfg).expect("world").scene.map.layout;
    assert_ne!(layout.origin.vertical_datum, VerticalDatum::Ellipsoidal, "the demo is orthometric");
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("ngii");

    // Without a geoid the heights cannot be made ellipsoidal: nothing is written, an issue says so.
    let mut issues = Issues::new();
    let none = write_ngii(&out, &layout, &NgiiConfig::default(), &mut issues).expect("no error");
    assert!(none.layers.is_empty() && !out.exists(), "{none:?}");
    assert!(issues.iter().any(|i| i.to_string().contains("geoid")), "{issues:?}");

    let n = 24.75;
    let config = NgiiConfig { geoid_undulation_m: Some(n), ..NgiiConfig::default() };
    let summary = write_ngii(&out, &layout, &config, &mut Issues::new()).expect("write");
    eprintln!("{summary:?}");
    let files: Vec<std::path::PathBuf> =
        summary.layers.keys().map(|l| out.join(format!("{l}.shp"))).collect();
    let mut args: Vec<&OsStr> = vec![OsStr::new("--features"), OsStr::new("5186")];
    args.extend(files.iter().map(|f| f.as_os_str()));
    let r = ogrinfo(&args);

    let layer = |name: &str| -> &Value {
        let key = out.join(format!("{name}.shp")).to_string_lossy().to_string();
        &r[key.as_str()]
    };
    let expect = [
        ("A1_LANE_3D", layout.lane_boundaries.len() + layout.road_edges.len(), "3D Line String"),
        ("A2_STOP_3D", layout.stop_lines.len(), "3D Line String"),
        ("A3_LINK_3D", layout.lanes.len(), "3D Line String"),
        (
            "B2_SURFSIGN_DIRECTION_3D",
            layout.surface_marks.iter().filter(|m| matches!(m.kind, hdmap_core::MarkKind::Arrow(_))).count(),
            "3D Polygon",
        ),
    ];
    for (name, count, geometry) in expect {
        let l = &layer(name)["layers"][name];
        assert_eq!(l["feature_count"].as_u64(), Some(count as u64), "{name}: {l}");
        assert_eq!(l["geometry"].as_str(), Some(geometry), "{name}");
        assert_eq!(l["crs"].as_str(), Some("WGS 84 / UTM zone 52N"), "{name}");
        assert_eq!(layer(name)["prj_epsg"].as_u64(), Some(32652), "{name}");
    }
    assert!(
        layout.crosswalks.len() <= layer("B2_SURFSIGN_PLANE_3D")["features"].as_array().map_or(0, Vec::len)
    );

    // Vertices: back in the layout's CRS (pyproj) they are the truth within 1 cm, heights + N.
    let truth: BTreeMap<String, &Vec<hdmap_core::nalgebra::Point3<f64>>> = layout
        .lanes
        .iter()
        .map(|l| (l.id.0.to_string(), &l.center_line))
        .chain(layout.lane_boundaries.iter().map(|b| (b.id.0.to_string(), &b.points)))
        .chain(layout.stop_lines.iter().map(|s| (s.id.0.to_string(), &s.points)))
        .collect();
    let (mut worst_xy, mut worst_z, mut vertices) = (0.0f64, 0.0f64, 0);
    for name in ["A1_LANE_3D", "A2_STOP_3D", "A3_LINK_3D"] {
        for f in layer(name)["features"].as_array().expect("features") {
            let id = f["attrs"]["ID"].as_str().expect("ID");
            let Some(pts) = truth.get(id) else { continue };
            let got = f["coords"].as_array().expect("coords");
            assert_eq!(got.len(), pts.len(), "{name} {id} vertex count");
            for (g, p) in got.iter().zip(pts.iter()) {
                let g: Vec<f64> =
                    g.as_array().expect("xyz").iter().map(|v| v.as_f64().expect("num")).collect();
                worst_xy = worst_xy.max(((g[0] - p.x).powi(2) + (g[1] - p.y).powi(2)).sqrt());
                worst_z = worst_z.max((g[2] - (p.z + n)).abs());
                vertices += 1;
            }
        }
    }
    eprintln!(
        "{vertices} vertices: max horizontal error {:.2} mm, max height error {:.2} mm",
        worst_xy * 1e3,
        worst_z * 1e3
    );
    assert!(vertices > 1000, "{vertices} vertices compared");
    assert!(worst_xy < 0.01, "horizontal error {worst_xy} m");
    assert!(worst_z < 0.001, "height error {worst_z} m");

    // Topology through nodes: link B follows link A exactly when A's ToNodeID is B's FromNodeID.
    let links = layer("A3_LINK_3D")["features"].as_array().expect("links");
    let node = |f: &Value, k: &str| f["attrs"][k].as_str().expect("node id").to_string();
    let mut implied = BTreeSet::new();
    for a in links {
        for b in links {
            if node(a, "ToNodeID") == node(b, "FromNodeID") {
                implied.insert((node(a, "ID"), node(b, "ID")));
            }
        }
    }
    let truth_succ: BTreeSet<(String, String)> = layout
        .lanes
        .iter()
        .flat_map(|l| l.successors.iter().map(move |s| (l.id.0.to_string(), s.0.to_string())))
        .collect();
    assert_eq!(implied, truth_succ, "successors through C1 nodes");
    let nodes = layer("C1_NODE_3D")["layers"]["C1_NODE_3D"]["feature_count"].as_u64().expect("nodes");
    eprintln!("{} links, {} successor pairs, {nodes} nodes", links.len(), truth_succ.len());

    // The GeoPackage as ogrinfo sees it: one layer per element kind with the layout's counts.
    let gpkg = dir.path().join("layout.gpkg");
    hdmap_io::layout::write_layout_gpkg(&gpkg, &layout).expect("gpkg");
    let g = ogrinfo(&[gpkg.as_os_str()]);
    let gl = &g[gpkg.to_string_lossy().as_ref()]["layers"];
    for (name, count) in [
        ("lane_boundary", layout.lane_boundaries.len()),
        ("lane", layout.lanes.len()),
        ("stop_line", layout.stop_lines.len()),
        ("crosswalk", layout.crosswalks.len()),
        ("road_edge", layout.road_edges.len()),
    ] {
        assert_eq!(gl[name]["feature_count"].as_u64(), Some(count as u64), "gpkg {name}: {gl}");
    }
}
