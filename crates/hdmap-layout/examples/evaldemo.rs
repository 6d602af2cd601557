//! Extract the layout of a simulated scene and score it against the truth (development aid).
fn main() {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).expect("sim dir"));
    let cfg_sim: toml::Table =
        toml::from_str(&std::fs::read_to_string(dir.join("sim.toml")).expect("sim.toml")).expect("toml");
    let off = cfg_sim["ortho"]["georef_offset_m"]
        .as_array()
        .expect("offset")
        .iter()
        .map(|v| v.as_float().expect("f"))
        .collect::<Vec<_>>();
    let mut issues = hdmap_core::Issues::new();
    let t = std::time::Instant::now();
    let layout = hdmap_layout::extract_layout(
        &dir.join("aerial/ortho.tif"),
        Some(&dir.join("aerial/dsm.tif")),
        hdmap_core::VerticalDatum::Kngeoid18,
        &match std::env::args().nth(2) {
            Some(m) => hdmap_layout::LayoutConfig {
                segmenter: hdmap_layout::config::SegmenterKind::Learned,
                model: Some(m.into()),
                ..Default::default()
            },
            None => hdmap_layout::LayoutConfig::default(),
        },
        &mut issues,
    )
    .expect("extract");
    println!(
        "extracted in {:.1} s: {} boundaries, {} stop lines, {} crosswalks, {} marks, {} lanes",
        t.elapsed().as_secs_f64(),
        layout.lane_boundaries.len(),
        layout.stop_lines.len(),
        layout.crosswalks.len(),
        layout.surface_marks.len(),
        layout.lanes.len()
    );
    for i in issues.iter().take(10) {
        println!("issue: {i}");
    }
    let truth = hdmap_io::layout::read_layout_geojson(&dir.join("truth/layout.geojson")).expect("truth");
    let r = hdmap_eval::layout::evaluate(&layout, &truth, 0.2, [-off[0], -off[1]]);
    for c in &r.classes {
        println!("{:22} pred {:4} truth {:4}  {}", c.class, c.predicted, c.truth, c.summary());
    }
    println!("topology: {:?}", r.topology);
    // Beside the scene, not in a shared temporary directory.
    hdmap_io::layout::write_layout_geojson(&dir.join("eval_layout.geojson"), &layout).expect("write");
    hdmap_sim::preview::ortho_with_layout(
        &dir.join("aerial/ortho.tif"),
        &layout,
        &dir.join("eval_overlay.png"),
        7600,
    )
    .expect("overlay");
}
