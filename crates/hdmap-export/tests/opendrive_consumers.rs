//! An outside consumer loads our OpenDRIVE export: pyxodr (PyPI) builds every lane's borders
//! and centre line from the file's reference lines and width polynomials, and they lie on the
//! simulator's ground-truth lane geometry; its topology (road and lane links, junctions) equals
//! the layout's successors. The same script run on esmini's files shows that the way it uses
//! pyxodr reproduces what a file says.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;

use hdmap_core::nalgebra::Point3;
use hdmap_core::{ElementId, Issues, RoadLayout};
use hdmap_export::{OpenDriveConfig, write_opendrive};
use hdmap_io::testdata::{repo_root, run_python, shared_data};
use serde_json::Value;

fn demo_layout() -> RoadLayout {
    let cfg = hdmap_sim::load_config(&repo_root().join("configs/sim/demo.toml")).expect("demo config");
    let world = hdmap_sim::World::build(&cfg).expect("world");
    world.scene.map.layout.clone()
}

/// Horizontal distance from `q` to a polyline.
fn dist(q: [f64; 2], line: &[[f64; 2]]) -> f64 {
    line.windows(2)
        .map(|w| {
            let d = [w[1][0] - w[0][0], w[1][1] - w[0][1]];
            let l2 = d[0] * d[0] + d[1] * d[1];
            let u = if l2 > 0.0 {
                (((q[0] - w[0][0]) * d[0] + (q[1] - w[0][1]) * d[1]) / l2).clamp(0.0, 1.0)
            } else {
                0.0
            };
            (q[0] - w[0][0] - u * d[0]).hypot(q[1] - w[0][1] - u * d[1])
        })
        .fold(f64::INFINITY, f64::min)
}

/// Whether the foot of `q` on a polyline lies past one of its ends.
fn past_end(q: [f64; 2], line: &[[f64; 2]]) -> bool {
    let n = line.len();
    let before =
        |a: [f64; 2], b: [f64; 2]| (q[0] - a[0]) * (b[0] - a[0]) + (q[1] - a[1]) * (b[1] - a[1]) < 0.0;
    before(line[0], line[1]) || before(line[n - 1], line[n - 2])
}

/// A pyxodr polyline in the layout's CRS (file coordinates + header offset).
fn world(v: &Value, offset: [f64; 2]) -> Vec<[f64; 2]> {
    v.as_array()
        .expect("points")
        .iter()
        .map(|p| [p[0].as_f64().expect("x") + offset[0], p[1].as_f64().expect("y") + offset[1]])
        .collect()
}

fn xy(p: &[Point3<f64>]) -> Vec<[f64; 2]> {
    p.iter().map(|q| [q.x, q.y]).collect()
}

struct Stats {
    sum: f64,
    n: usize,
    max: f64,
}

impl Stats {
    fn new() -> Self {
        Self { sum: 0.0, n: 0, max: 0.0 }
    }
    fn add(&mut self, e: f64) {
        self.sum += e;
        self.n += 1;
        self.max = self.max.max(e);
    }
    fn mean(&self) -> f64 {
        self.sum / self.n.max(1) as f64
    }
}

#[test]
fn pyxodr_loads_the_demo_and_reproduces_the_truth_lanes() {
    let layout = demo_layout();
    let dir = tempfile::tempdir().expect("tempdir");
    let xodr = dir.path().join("demo.xodr");
    let mut issues = Issues::new();
    let cfg = OpenDriveConfig::default();
    let summary = write_opendrive(&xodr, &layout, &cfg, &mut issues).expect("write");
    eprintln!("{}", serde_json::to_string_pretty(&serde_json::json!({
        "roads": summary.roads, "connecting_roads": summary.connecting_roads, "junctions": summary.junctions,
        "junction_connections": summary.junction_connections, "lanes": summary.lanes,
        "geometries": summary.geometries, "max_reference_error_m": summary.max_reference_error_m,
        "max_boundary_error_m": summary.max_boundary_error_m, "mean_boundary_error_m": summary.mean_boundary_error_m,
        "max_center_line_error_m": summary.max_center_line_error_m, "max_height_error_m": summary.max_height_error_m,
        "max_heading_jump_deg": summary.max_heading_jump_deg, "crosswalks": summary.crosswalks,
        "stop_lines": summary.stop_lines, "unconnected": summary.unconnected_successors, "skipped": summary.skipped,
    })).expect("json"));
    for i in issues.iter() {
        eprintln!("issue: {i}");
    }

    let mut args: Vec<&OsStr> = vec![xodr.as_os_str()];
    let controls: Vec<std::path::PathBuf> = shared_data("opendrive_esmini")
        .map(|d| vec![d.join("fabriksgatan.xodr"), d.join("straight_500m_roadmarks.xodr")])
        .unwrap_or_default();
    for c in &controls {
        args.push(OsStr::new("--control"));
        args.push(c.as_os_str());
    }
    let r: Value =
        serde_json::from_str(&run_python("xodr_check.py", &args)).expect("xodr_check.py prints JSON");

    // The checker reads third-party files the way they are meant: constant widths come back
    // as the distance between pyxodr's lane borders, and a junction town loads whole.
    for c in r["controls"].as_array().expect("controls") {
        eprintln!("control: {c}");
        assert!(c["roads"].as_u64().unwrap_or(0) >= 1 && c["lanes"].as_u64().unwrap_or(0) >= 2, "{c}");
        assert!(c["width_checks"].as_u64().unwrap_or(0) >= 2, "{c}");
        assert!(c["max_width_diff_m"].as_f64().expect("width diff") < 0.01, "{c}");
    }
    if let Some(fab) = r["controls"].as_array().and_then(|c| c.first()) {
        assert_eq!(fab["roads"].as_u64(), Some(16), "fabriksgatan.xodr has 16 roads");
        assert!(fab["junctions"].as_u64().unwrap_or(0) >= 1);
    }

    // The file: OpenDRIVE 1.8 with the layout's CRS and origin.
    let x = &r["xml"];
    assert_eq!(x["root"], "OpenDRIVE");
    assert_eq!((x["revMajor"].as_str(), x["revMinor"].as_str()), (Some("1"), Some("8")));
    let geo = x["geo_reference"].as_str().expect("geoReference");
    assert!(geo.contains("Korea 2000") && geo.contains("Central Belt 2010"), "{geo}");
    let off: Vec<f64> =
        x["offset"].as_array().expect("offset").iter().map(|v| v.as_f64().expect("f64")).collect();
    assert_eq!(off, layout.origin.origin.to_vec());
    let offset = [off[0], off[1]];

    // Every vehicle lane of the layout is one pyxodr lane, marked with its layout id.
    let lanes = r["lanes"].as_array().expect("lanes");
    let mut by_layout: BTreeMap<u64, &Value> = BTreeMap::new();
    for l in lanes {
        if let Some(id) = l["layout_lane"].as_u64() {
            assert!(by_layout.insert(id, l).is_none(), "layout lane {id} written twice");
        }
    }
    let vehicle: BTreeSet<u64> =
        layout.lanes.iter().filter(|l| l.kind.is_vehicle_lane()).map(|l| l.id.0).collect();
    assert!(vehicle.len() > 30, "{} vehicle lanes", vehicle.len());
    for id in &vehicle {
        let l = by_layout.get(id).unwrap_or_else(|| panic!("layout lane {id} not in pyxodr's network"));
        assert_eq!(l["type"], "driving", "lane {id}");
    }
    assert_eq!(r["roads"].as_u64(), Some(summary.roads as u64));
    assert_eq!(r["junctions"].as_u64(), Some(summary.junctions as u64));

    // Geometry: pyxodr's centre lines and borders against the layout's lanes.
    let bounds: BTreeMap<ElementId, Vec<[f64; 2]>> = layout
        .lane_boundaries
        .iter()
        .map(|b| (b.id, xy(&b.points)))
        .chain(layout.road_edges.iter().map(|e| (e.id, xy(&e.points))))
        .collect();
    let (mut centre, mut border, mut height, mut overhang) =
        (Stats::new(), Stats::new(), Stats::new(), Stats::new());
    for lane in &layout.lanes {
        let l = by_layout[&lane.id.0];
        let c: Vec<[f64; 2]> = world(&l["centre"], offset);
        let cz: Vec<f64> =
            l["centre"].as_array().expect("centre").iter().map(|p| p[2].as_f64().expect("z")).collect();
        for q in &lane.center_line {
            centre.add(dist([q.x, q.y], &c));
            // Height of the nearest pyxodr centre point (0.2 m resolution).
            let k = (0..c.len())
                .min_by(|&a, &b| {
                    (c[a][0] - q.x).hypot(c[a][1] - q.y).total_cmp(&(c[b][0] - q.x).hypot(c[b][1] - q.y))
                })
                .expect("points");
            height.add((cz[k] + layout.origin.origin[2] - q.z).abs());
        }
        // Each layout boundary lies on one of pyxodr's two borders, and they are different ones.
        let sides = [world(&l["inner"], offset), world(&l["outer"], offset)];
        let mut picked = Vec::new();
        for r in [lane.left, lane.right] {
            let pts = &bounds[&r.id];
            let mean = |s: &Vec<[f64; 2]>| pts.iter().map(|q| dist(*q, s)).sum::<f64>() / pts.len() as f64;
            let k = if mean(&sides[0]) <= mean(&sides[1]) { 0 } else { 1 };
            picked.push(k);
            for q in pts {
                // Boundary vertices beyond the written lane's ends (the simulator's offset
                // boundaries of curved connectors overhang their lanes) are counted apart.
                if past_end(*q, &sides[k]) {
                    overhang.add(dist(*q, &sides[k]));
                } else {
                    border.add(dist(*q, &sides[k]));
                }
            }
        }
        assert_ne!(picked[0], picked[1], "lane {}: both boundaries on one pyxodr border", lane.id);
    }
    eprintln!(
        "pyxodr vs truth: centre lines mean {:.2} cm max {:.2} cm ({} vertices); borders mean {:.2} cm max {:.2} cm ({}); \
         boundary vertices past the lane ends: {} up to {:.2} cm; heights max {:.2} cm",
        centre.mean() * 100.0,
        centre.max * 100.0,
        centre.n,
        border.mean() * 100.0,
        border.max * 100.0,
        border.n,
        overhang.n,
        overhang.max * 100.0,
        height.max * 100.0
    );
    assert!(centre.mean() < 0.01 && centre.max < 0.08, "centre lines");
    assert!(border.mean() < 0.01 && border.max < 0.06, "borders");
    assert!(overhang.n < border.n / 50 && overhang.max < 0.2, "overhanging boundary ends");
    // Cross-fall is not written (and pyxodr ignores superelevation anyway): pyxodr's heights
    // are the written elevation, as far from the truth as the writer reports.
    assert!(height.max <= summary.max_height_error_m + 0.01 && height.max < 0.25, "heights");
    // The written reference lines meet the tolerance by the writer's own evaluation.
    assert!(summary.max_reference_error_m <= cfg.max_fit_error_m, "{summary:?}");
    assert!(summary.mean_boundary_error_m < 0.01, "{summary:?}");
    assert!(
        summary.geometries.arc + summary.geometries.param_poly3 > 0,
        "the curved east arm is not all lines"
    );

    // Topology: pyxodr's traffic-flow successors are the layout's, lane by lane.
    let key_to_lane: BTreeMap<String, u64> = lanes
        .iter()
        .filter_map(|l| {
            Some((format!("{}:{}", l["road"].as_str()?, l["lane"].as_i64()?), l["layout_lane"].as_u64()?))
        })
        .collect();
    let unconnected: BTreeSet<(u64, u64)> =
        summary.unconnected_successors.iter().map(|u| (u.lane.0, u.successor.0)).collect();
    assert!(unconnected.is_empty(), "{:?}", summary.unconnected_successors);
    let mut edges = 0;
    for lane in &layout.lanes {
        let key = key_to_lane.iter().find(|(_, v)| **v == lane.id.0).map(|(k, _)| k.clone()).expect("key");
        let got = &r["successors"][&key];
        let got: BTreeSet<u64> = got
            .as_array()
            .unwrap_or_else(|| panic!("lane {} ({key}): {got}", lane.id))
            .iter()
            .map(|k| key_to_lane[k.as_str().expect("key")])
            .collect();
        let want: BTreeSet<u64> = lane.successors.iter().map(|s| s.0).collect();
        assert_eq!(got, want, "lane {} ({key}) successors", lane.id);
        edges += want.len();
    }
    assert!(edges > 20, "{edges} successor edges compared");
    assert!(summary.crosswalks == layout.crosswalks.len() && summary.stop_lines == layout.stop_lines.len());
}
