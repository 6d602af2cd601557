//! Outside consumers load our Lanelet2 export: the `lanelet2` package (PyPI) loads the OSM with
//! its projector, builds a routing graph, finds routes along the simulated drive, and its
//! topology equals the layout's ground truth; the real Karlsruhe map survives a round trip
//! through our model with the same lanelets and topology.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::path::Path;

use hdmap_core::{Issues, LineType, RoadLayout, VerticalDatum};
use hdmap_export::{Flavour, Lanelet2Config, MapProjection, write_lanelet2};
use hdmap_io::osm::{Lanelet2Import, OsmKind, read_lanelet2};
use hdmap_io::testdata::{repo_root, run_python, shared_data};
use serde_json::Value;

fn check(osm: &Path, lat: f64, lon: f64, drive: Option<&Path>) -> Value {
    let (lat, lon) = (format!("{lat:.9}"), format!("{lon:.9}"));
    let mut args: Vec<&OsStr> = vec![osm.as_os_str(), OsStr::new(&lat), OsStr::new(&lon)];
    if let Some(d) = drive {
        args.push(OsStr::new("--drive"));
        args.push(d.as_os_str());
    }
    serde_json::from_str(&run_python("lanelet2_check.py", &args)).expect("lanelet2_check.py prints JSON")
}

fn ids(v: &Value) -> BTreeSet<u64> {
    v.as_array().expect("array").iter().map(|x| x.as_u64().expect("id")).collect()
}

fn demo_layout_and_drive() -> (RoadLayout, Vec<[f64; 2]>) {
    let cfg = hdmap_sim::load_config(&repo_root().join("configs/sim/demo.toml")).expect("demo config");
    let world = hdmap_sim::World::build(&cfg).expect("world");
    let mut xy = Vec::new();
    let mut last = f64::NEG_INFINITY;
    for p in &world.vehicle_poses.poses {
        let t = p.stamp_ns as f64 * 1e-9;
        if t - last >= 0.5 {
            let a = world.to_absolute(&p.target_from_source).translation.vector;
            xy.push([a.x, a.y]);
            last = t;
        }
    }
    (world.scene.map.layout.clone(), xy)
}

#[test]
fn lanelet2_loads_routes_and_agrees_with_the_truth_topology() {
    let (layout, drive_xy) = demo_layout_and_drive();
    let dir = tempfile::tempdir().expect("tempdir");
    let osm = dir.path().join("lanelet2_map.osm");
    let mut issues = Issues::new();
    let plain = Lanelet2Config { flavour: Flavour::Lanelet2, ..Lanelet2Config::default() };
    let summary = write_lanelet2(&osm, &layout, &plain, &mut issues).expect("write");
    assert!(summary.unjoined_successors.is_empty(), "{:?}", summary.unjoined_successors);
    assert!(summary.overlapping_lanes.is_empty(), "{:?}", summary.overlapping_lanes);
    eprintln!("demo layout → Lanelet2: {summary:?}");

    // The drive in the map's local frame (what lanelet2's UtmProjector computes).
    let proj = MapProjection::for_origin(&layout.origin).expect("projection");
    let mut local = drive_xy.clone();
    proj.to_local(&mut local).expect("local");
    let drive = dir.path().join("drive.txt");
    let text: String = local.iter().map(|p| format!("{:.3} {:.3}\n", p[0], p[1])).collect();
    std::fs::write(&drive, text).expect("drive file");

    let r = check(&osm, proj.origin_lat_deg, proj.origin_lon_deg, Some(&drive));
    assert_eq!(r["load_errors"], Value::Array(vec![]), "loadRobust errors");
    assert_eq!(r["validity"], Value::Array(vec![]), "routing graph validity");
    assert_eq!(r["checks"], Value::Array(vec![]), "validator findings");
    assert_eq!(r["lanelets"].as_u64(), Some((layout.lanes.len() + layout.crosswalks.len()) as u64));

    // Topology: lanelet2's routing graph against the simulator's ground truth.
    let topo = &r["topology"];
    let boundary_type: BTreeMap<_, _> = layout.lane_boundaries.iter().map(|b| (b.id, b.line_type)).collect();
    let (mut succ_edges, mut neighbour_edges) = (0, 0);
    for lane in &layout.lanes {
        let t = &topo[lane.id.0.to_string()];
        let truth: BTreeSet<u64> = lane.successors.iter().map(|s| s.0).collect();
        assert_eq!(ids(&t["following"]), truth, "lane {} successors", lane.id);
        succ_edges += truth.len();
        for (side, n, b, changeable, adjacent) in [
            ("left", lane.left_neighbour, lane.left, "left", "adjacent_left"),
            ("right", lane.right_neighbour, lane.right, "right", "adjacent_right"),
        ] {
            let got: BTreeSet<u64> = ids(&t[changeable]).union(&ids(&t[adjacent])).copied().collect();
            let want: BTreeSet<u64> = n.iter().map(|x| x.0).collect();
            assert_eq!(got, want, "lane {} {side} neighbour", lane.id);
            if let Some(n) = n {
                neighbour_edges += 1;
                // Lane change where the shared line is crossable from this side.
                let (from_left, from_right) = boundary_type[&b.id].crossing_allowed();
                let from_this_side = if (side == "left") != b.reversed { from_right } else { from_left };
                let may_change = boundary_type[&b.id] != LineType::Virtual && from_this_side;
                assert_eq!(ids(&t[changeable]).contains(&n.0), may_change, "lane {} {side} change", lane.id);
            }
        }
    }
    assert!(
        succ_edges > 20 && neighbour_edges > 10,
        "{succ_edges} successor / {neighbour_edges} neighbour edges"
    );

    // The Autoware flavour: the same lanelets and topology; plain Lanelet2 refuses only its
    // road_marking regulatory elements (Autoware's lanelet2_extension registers that rule).
    let aw = dir.path().join("lanelet2_map_autoware.osm");
    let s = write_lanelet2(&aw, &layout, &Lanelet2Config::default(), &mut issues).expect("write autoware");
    assert!(s.regulatory_elements > 0, "{s:?}");
    let ra = check(&aw, proj.origin_lat_deg, proj.origin_lon_deg, None);
    for e in ra["load_errors"].as_array().expect("errors").iter().skip(1) {
        let e = e.as_str().unwrap_or("");
        assert!(e.contains("road_marking") || e.contains("Failed to get id"), "{e}");
    }
    assert_eq!(ra["topology"], r["topology"], "Autoware flavour topology");
    assert_eq!(ra["validity"], Value::Array(vec![]));

    // The drive: every leg on the lanelets routed, the route's lanelets under the drive.
    let d = &r["drive"];
    let (samples, on) = (d["samples"].as_u64().unwrap_or(0), d["on_lanelets"].as_u64().unwrap_or(0));
    eprintln!("drive: {on} of {samples} samples on lanelets; legs {}", d["legs"]);
    assert!(on as f64 >= 0.9 * samples as f64, "{on} of {samples} drive samples on lanelets");
    let legs = d["legs"].as_array().expect("legs");
    let long: Vec<&Value> = legs.iter().filter(|l| l["length_m"].as_f64().unwrap_or(0.0) > 30.0).collect();
    assert!(long.len() >= 2, "the U-turn drive has two long legs: {legs:?}");
    for leg in long {
        assert_eq!(leg["routed"], Value::Bool(true), "{leg}");
        let (n, c) = (leg["samples"].as_u64().unwrap_or(0), leg["covered"].as_u64().unwrap_or(0));
        assert!(c as f64 >= 0.95 * n as f64, "route covers {c} of {n} samples: {leg}");
    }
}

#[test]
fn karlsruhe_round_trip_keeps_lanelets_and_topology() {
    let Some(dir) = shared_data("lanelet2_karlsruhe") else { return };
    let src = dir.join("mapping_example.osm");
    let mut issues = Issues::new();
    let import = Lanelet2Import { epsg: None, vertical_datum: VerticalDatum::Ellipsoidal };
    let map = read_lanelet2(&src, &import, &mut issues).expect("read Karlsruhe");
    let layout = map.layout;
    assert_eq!(layout.origin.epsg, 32632, "UTM 32N for Karlsruhe");
    assert_eq!(layout.lanes.len(), 371);
    let mut v = Issues::new();
    let errs = layout.validate(&mut v);
    assert_eq!(errs, 0, "{:?}", v.iter().map(|i| i.to_string()).collect::<Vec<_>>());

    let out_dir = tempfile::tempdir().expect("tempdir");
    // The imported model (lane kinds, two-way lanes, kerb-bounded lanes, source tags) survives
    // our own GeoPackage and GeoJSON.
    let gpkg = out_dir.path().join("karlsruhe.gpkg");
    hdmap_io::layout::write_layout_gpkg(&gpkg, &layout).expect("write gpkg");
    assert!(hdmap_io::layout::read_layout_gpkg(&gpkg).expect("read gpkg") == layout, "GeoPackage round trip");
    let geojson = out_dir.path().join("karlsruhe.geojson");
    hdmap_io::layout::write_layout_geojson(&geojson, &layout).expect("write geojson");
    assert!(
        hdmap_io::layout::read_layout_geojson(&geojson).expect("read geojson") == layout,
        "GeoJSON round trip"
    );
    assert!(layout.lanes.iter().any(|l| l.bidirectional) && !layout.source_tags.is_empty());

    let out = out_dir.path().join("karlsruhe.osm");
    let plain = Lanelet2Config { flavour: Flavour::Lanelet2, ..Lanelet2Config::default() };
    let summary = write_lanelet2(&out, &layout, &plain, &mut issues).expect("write");
    eprintln!("round trip: {summary:?}");
    assert!(summary.unjoined_successors.is_empty(), "{:?}", summary.unjoined_successors);
    let a = check(&src, 49.0, 8.4, None);
    let b = check(&out, 49.0, 8.4, None);
    assert_eq!(b["load_errors"], Value::Array(vec![]));
    assert_eq!(a["lanelets"], b["lanelets"], "lanelet count");
    assert_eq!(b["lanelets"].as_u64(), Some(371));
    assert_eq!(b["validity"], Value::Array(vec![]));
    // Same routing graph, lanelet by lanelet (ids are kept).
    // Lanelet ids a way also had were renumbered by the import: compare through that table.
    let lanelet_id = |id: u64| map.renumbered.get(&(OsmKind::Relation, id as i64)).map_or(id, |e| e.0);
    eprintln!("renumbered: {:?}", map.renumbered);
    let renumber = |t: &Value| -> Value {
        let mut t = t.clone();
        for k in ["following", "left", "right", "adjacent_left", "adjacent_right"] {
            t[k] = Value::Array(ids(&t[k]).into_iter().map(|i| Value::from(lanelet_id(i))).collect());
        }
        t
    };
    let (ta, tb) =
        (a["topology"].as_object().expect("topology"), b["topology"].as_object().expect("topology"));
    let mut differ = Vec::new();
    for (id, x) in ta {
        let mapped = lanelet_id(id.parse().expect("numeric id")).to_string();
        if tb.get(&mapped) != Some(&renumber(x)) {
            differ.push(format!("{id}: {x} vs {:?}", tb.get(&mapped)));
        }
    }
    assert!(differ.is_empty(), "{} lanelets differ:\n{}", differ.len(), differ.join("\n"));
    let following: usize = ta.values().map(|t| t["following"].as_array().map_or(0, Vec::len)).sum();
    assert!(following > 300, "{following} following relations compared");
}
