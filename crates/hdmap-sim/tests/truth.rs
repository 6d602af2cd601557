//! The simulator's outputs checked against the world they were made from (issue: hdmap-sim).

mod common;

use std::collections::HashMap;

use common::{demo, inside, layout_paint, scans, to_world};
use hdmap_core::semantic::unpack_label;
use hdmap_core::{Issues, SemanticClass};
use hdmap_io::raster::{Raster, Window};

#[test]
fn hdmap_info_reads_every_file_the_simulator_writes() {
    let d = demo();
    let mut files = Vec::new();
    let mut stack = vec![d.dir.clone()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).expect("dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push(p);
            }
        }
    }
    assert!(files.len() >= 2 * d.summary.scans + 10, "{} files", files.len());
    for f in &files {
        hdmap_io::info::describe(f, |_, _| {})
            .unwrap_or_else(|e| panic!("hdmap info fails on a simulator output: {e}"));
    }
}

/// Element-by-element equality with a readable failure.
fn same_layout(a: &hdmap_core::RoadLayout, b: &hdmap_core::RoadLayout, what: &str) {
    assert_eq!(a.origin, b.origin, "{what}: origin");
    macro_rules! each {
        ($f:ident) => {
            assert_eq!(a.$f.len(), b.$f.len(), "{what}: {} count", stringify!($f));
            for (x, y) in a.$f.iter().zip(&b.$f) {
                assert!(x == y, "{what}: {} {} differs:\n{:?}\n{:?}", stringify!($f), y.id, x, y);
            }
        };
    }
    each!(lane_boundaries);
    each!(road_edges);
    each!(stop_lines);
    each!(crosswalks);
    each!(surface_marks);
    each!(lanes);
}

#[test]
fn layout_truth_is_valid_and_round_trips_through_geojson_and_gpkg() {
    let d = demo();
    let layout = &d.world.scene.map.layout;
    let mut issues = Issues::new();
    assert_eq!(layout.validate(&mut issues), 0, "{:#?}", issues.iter().collect::<Vec<_>>());
    assert_eq!(layout.origin.epsg, 5186);
    let from_json = hdmap_io::layout::read_layout_geojson(&d.dir.join(hdmap_sim::files::LAYOUT_GEOJSON))
        .expect("geojson");
    same_layout(&from_json, layout, "GeoJSON");
    let from_gpkg =
        hdmap_io::layout::read_layout_gpkg(&d.dir.join(hdmap_sim::files::LAYOUT_GPKG)).expect("gpkg");
    same_layout(&from_gpkg, layout, "GeoPackage");
    // Korean practice: 0.15 m lines, 3 m / 5 m dashes, yellow double centre lines, 0.45 m stop lines.
    assert!(
        layout.lane_boundaries.iter().filter(|b| b.line_type != hdmap_core::LineType::Virtual).all(|b| (b
            .width_m
            - 0.15)
            .abs()
            < 1e-9)
    );
    assert!(
        layout.lane_boundaries.iter().filter_map(|b| b.dash).all(|dp| dp.paint_m == 3.0 && dp.gap_m == 5.0)
    );
    assert!(
        layout.lane_boundaries.iter().any(|b| b.line_type == hdmap_core::LineType::DoubleSolid
            && b.color == hdmap_core::MarkingColor::Yellow)
    );
    assert!(layout.stop_lines.iter().all(|s| (s.width_m - 0.45).abs() < 1e-9));
    // Heights vary by metres over the demo.
    let zs: Vec<f64> = layout.lanes.iter().flat_map(|l| l.center_line.iter().map(|p| p.z)).collect();
    let (lo, hi) = zs.iter().fold((f64::MAX, f64::MIN), |(a, b), z| (a.min(*z), b.max(*z)));
    assert!(hi - lo > 2.0, "height range {:.2} m", hi - lo);
    // Topology: every lane arriving at the junction continues through it.
    for l in layout.lanes.iter().filter(|l| l.stop_line.is_some()) {
        assert!(!l.successors.is_empty(), "lane {} stops at a stop line with no movement", l.id);
    }
}

#[test]
fn lidar_marking_returns_lie_on_layout_markings_within_range_noise() {
    let d = demo();
    let paint = layout_paint(&d.world);
    let mut dists = Vec::new();
    for (_, cloud, labels) in scans(d, 4) {
        for (i, l) in labels.iter().enumerate() {
            if SemanticClass::from_id(unpack_label(*l).0) == Some(SemanticClass::LaneMarking) {
                let (p, _) = to_world(&d.world, &cloud, i);
                dists.push(paint.distance([p.x, p.y]));
            }
        }
    }
    assert!(dists.len() > 20_000, "{} marking returns", dists.len());
    dists.sort_by(f64::total_cmp);
    let p99 = dists[dists.len() * 99 / 100];
    let max = dists[dists.len() - 1];
    let median = dists[dists.len() / 2];
    eprintln!(
        "LiDAR marking returns: {} points, distance to layout paint median {median:.3} m, p99 {p99:.3} m, max {max:.3} m",
        dists.len()
    );
    // Range noise is 2 cm along the ray; on the ground that is ≤ 2 cm horizontally (3σ = 6 cm).
    assert!(
        p99 <= 0.06 && max <= 0.15,
        "distance to the nearest layout marking: p99 {p99:.3} m, max {max:.3} m"
    );
}

#[test]
fn dynamic_labels_match_object_boxes() {
    let d = demo();
    let w = &d.world;
    let movers: HashMap<u16, &hdmap_sim::traffic::Mover> = w.movers.iter().map(|m| (m.instance, m)).collect();
    let (mut moving, mut moving_inside, mut parked, mut parked_inside, mut missed) = (0, 0, 0, 0, 0);
    for (_, cloud, labels) in scans(d, 6) {
        for (i, l) in labels.iter().enumerate() {
            let (class, inst) = unpack_label(*l);
            let class = SemanticClass::from_id(class).expect("known class");
            let (p, t) = to_world(w, &cloud, i);
            let p = [p.x, p.y, p.z];
            if class.is_moving() {
                moving += 1;
                let m = movers.get(&inst).expect("moving points carry a mover's instance id");
                assert_eq!(m.class, class);
                moving_inside += inside(&m.object(&w.scene.map, &w.scene.terrain, t).shape, p, 0.1) as usize;
            } else if class == SemanticClass::Car {
                parked += 1;
                parked_inside +=
                    w.parked_drive.iter().any(|o| o.instance == inst && inside(&o.shape, p, 0.1)) as usize;
            } else {
                // A static label must not sit deep inside a moving object's box.
                let deep = w.movers.iter().any(|m| {
                    let (q, _) = m.state(&w.scene.map, t);
                    (q[0] - p[0]).hypot(q[1] - p[1]) < 4.0
                        && inside(&m.object(&w.scene.map, &w.scene.terrain, t).shape, p, -0.15)
                });
                missed += deep as usize;
            }
        }
    }
    eprintln!(
        "labels: {moving} moving points in their boxes: {moving_inside}; {parked} parked: {parked_inside}; static inside movers: {missed}"
    );
    assert!(moving > 2_000 && parked > 200, "{moving} moving, {parked} parked points");
    assert_eq!(moving_inside, moving, "moving points outside their object's box");
    assert_eq!(parked_inside, parked, "parked-car points outside their box");
    assert_eq!(missed, 0, "static-labelled points inside moving objects");
}

#[test]
fn orthophoto_marking_pixels_coincide_with_layout_polygons() {
    let d = demo();
    let w = &d.world;
    let r = Raster::open(&d.dir.join(hdmap_sim::files::ORTHO)).expect("ortho");
    let g = r.georef().expect("georeferenced");
    let (wd, ht) = (r.info.width, r.info.height);
    let bands: Vec<Vec<u8>> = (1..=3)
        .map(|b| r.read_window(b, Window { col: 0, row: 0, width: wd, height: ht }).expect("band"))
        .collect();
    let lum: Vec<f32> = (0..wd * ht)
        .map(|i| 0.299 * bands[0][i] as f32 + 0.587 * bands[1][i] as f32 + 0.114 * bands[2][i] as f32)
        .collect();
    // Local mean over 31 × 31 px (2.5 m) by an integral image.
    let mut integral = vec![0f64; (wd + 1) * (ht + 1)];
    for y in 0..ht {
        let mut row = 0.0;
        for x in 0..wd {
            row += lum[y * wd + x] as f64;
            integral[(y + 1) * (wd + 1) + x + 1] = integral[y * (wd + 1) + x + 1] + row;
        }
    }
    let mean = |x: usize, y: usize| {
        let (x0, y0, x1, y1) =
            (x.saturating_sub(15), y.saturating_sub(15), (x + 16).min(wd), (y + 16).min(ht));
        let s = integral[y1 * (wd + 1) + x1] - integral[y0 * (wd + 1) + x1] - integral[y1 * (wd + 1) + x0]
            + integral[y0 * (wd + 1) + x0];
        s / ((x1 - x0) * (y1 - y0)) as f64
    };
    let o = w.cfg.origin.origin;
    let off = w.cfg.ortho.georef_offset_m;
    // Local coordinates of a pixel centre, undoing the known georeferencing offset.
    let local = |x: usize, y: usize| {
        let p = g.pixel_to_world(x as f64 + 0.5, y as f64 + 0.5);
        [p[0] - off[0] - o[0], p[1] - off[1] - o[1]]
    };
    let paint = layout_paint(w);
    let aerial = w.aerial_objects();
    let occluded = |p: [f64; 2]| {
        aerial.iter().chain(w.scene.objects.iter()).any(|ob| {
            let b = ob.shape.bounds();
            p[0] > b[0] - 0.3 && p[0] < b[2] + 0.3 && p[1] > b[1] - 0.3 && p[1] < b[3] + 0.3
        })
    };
    let gsd = w.cfg.ortho.gsd_m;
    let (mut detected, mut detected_on_gt, mut gt, mut gt_found) = (0usize, 0usize, 0usize, 0usize);
    for y in (8..ht - 8).step_by(2) {
        for x in (8..wd - 8).step_by(2) {
            let p = local(x, y);
            if !w.scene.map.on_road(p) || occluded(p) {
                continue;
            }
            // Contrast relative to the surroundings, so paint in shadow counts too.
            let (l, m) = (lum[y * wd + x] as f64, mean(x, y));
            let bright = l - m > 20.0 && l > 1.35 * m;
            let dist = paint.distance(p);
            if bright {
                detected += 1;
                detected_on_gt += (dist <= 1.5 * gsd) as usize;
            }
            // Interior paint pixels (half a pixel away from any paint edge).
            let h = gsd / 2.0;
            let painted = |q: [f64; 2]| w.scene.map.paint_at(q).is_some();
            if dist == 0.0
                && painted(p)
                && painted([p[0] + h, p[1]])
                && painted([p[0] - h, p[1]])
                && painted([p[0], p[1] + h])
                && painted([p[0], p[1] - h])
            {
                // Fresh paint only: worn spots are meant to be hard to see.
                if let Some((_, strength)) = w.scene.map.paint_at(p)
                    && strength > 0.9
                {
                    gt += 1;
                    gt_found += bright as usize;
                }
            }
        }
    }
    let precision = detected_on_gt as f64 / detected.max(1) as f64;
    let recall = gt_found as f64 / gt.max(1) as f64;
    eprintln!(
        "orthophoto paint: precision {precision:.3} ({detected} paint-like pixels), recall {recall:.3} ({gt} fresh paint pixels)"
    );
    assert!(detected > 5_000 && gt > 5_000, "{detected} detected, {gt} ground-truth paint pixels");
    assert!(
        precision > 0.95,
        "paint-like pixels on layout markings: {precision:.3} ({detected_on_gt}/{detected})"
    );
    assert!(recall > 0.9, "fresh layout paint visible in the orthophoto: {recall:.3} ({gt_found}/{gt})");
}

#[test]
fn demo_gnss_drifts_metres_near_buildings_and_stays_calibrated_in_open_sky() {
    let d = demo();
    let ins = hdmap_sim::ins_of(&d.world).expect("ins");
    let max_h = ins.position_error.iter().map(|e| e[0].hypot(e[1])).fold(0.0, f64::max);
    assert!(
        max_h >= 1.0,
        "largest horizontal GNSS error {max_h:.2} m: the registration stage needs ≥ 1 m of drift"
    );
    // The INS CSV the pipeline reads holds exactly this solution.
    let csv = hdmap_io::trajectory::read_ins_csv(
        &d.dir.join(hdmap_sim::files::INS),
        Some(d.world.cfg.origin.clone()),
    )
    .expect("ins csv");
    let o = d.world.cfg.origin.origin;
    for (k, p) in csv.trajectory.poses.iter().enumerate().step_by(97) {
        let q = ins.poses[k].translation.vector;
        let v = p.target_from_source.translation.vector;
        assert!((v.x - o[0] - q.x).abs() < 1e-6 && (v.y - o[1] - q.y).abs() < 1e-6);
    }
    let sd = csv.position_std_m.expect("std columns");
    // Reported std covers the true error like a Gaussian: ~95 % inside 2σ (loose: correlated errors).
    let inside = ins
        .position_error
        .iter()
        .zip(&sd)
        .filter(|(e, s)| e[0].abs() < 2.0 * s[0] && e[1].abs() < 2.0 * s[1])
        .count();
    let frac = inside as f64 / sd.len() as f64;
    eprintln!(
        "demo GNSS: max horizontal error {max_h:.2} m, {:.1} % of epochs inside the reported 2σ",
        100.0 * frac
    );
    assert!(frac > 0.75, "errors inside the reported 2σ: {frac:.2}");
}
