//! The layout stage on a held-out simulated scene: `configs/sim/demo.toml` with its own seed
//! (the learned model was trained on other seeds and another city design, see
//! `tools/train_layout_model`). Both segmenters are scored against the simulator's ground
//! truth, side by side: per-class polyline precision / recall / F1 at 0.2 m, position and
//! height errors, lane topology.

use std::path::Path;

use hdmap_core::{Issues, VerticalDatum};
use hdmap_eval::layout::{LayoutReport, evaluate};
use hdmap_layout::LayoutConfig;
use hdmap_layout::config::SegmenterKind;

fn scene() -> (tempfile::TempDir, [f64; 2]) {
    let root = hdmap_io::testdata::repo_root();
    let cfg = hdmap_sim::load_config(&root.join("configs/sim/demo.toml")).expect("demo config");
    let dir = tempfile::tempdir().expect("tempdir");
    hdmap_sim::simulate_aerial(&cfg, dir.path()).expect("simulate");
    let off = cfg.ortho.georef_offset_m;
    (dir, [-off[0], -off[1]])
}

fn run(dir: &Path, cfg: &LayoutConfig, undo_offset: [f64; 2]) -> LayoutReport {
    let mut issues = Issues::new();
    let layout = hdmap_layout::extract_layout(
        &dir.join(hdmap_sim::files::ORTHO),
        Some(&dir.join(hdmap_sim::files::DSM)),
        VerticalDatum::Kngeoid18,
        cfg,
        &mut issues,
    )
    .expect("extract");
    assert_eq!(issues.count_at_least(hdmap_core::Severity::Error), 0, "{issues:?}");
    let truth =
        hdmap_io::layout::read_layout_geojson(&dir.join(hdmap_sim::files::LAYOUT_GEOJSON)).expect("truth");
    evaluate(&layout, &truth, 0.2, undo_offset)
}

fn class<'a>(r: &'a LayoutReport, name: &str) -> &'a hdmap_eval::layout::ClassScore {
    r.classes.iter().find(|c| c.class == name).unwrap_or_else(|| panic!("no class {name}"))
}

#[test]
fn held_out_scene_classical_and_learned_side_by_side() {
    let (dir, off) = scene();
    let classical = run(dir.path(), &LayoutConfig::default(), off);
    let model = hdmap_io::testdata::repo_root().join("datasets/models/layout_unet.safetensors");
    let learned = run(
        dir.path(),
        &LayoutConfig { segmenter: SegmenterKind::Learned, model: Some(model), ..Default::default() },
        off,
    );
    eprintln!("{:22} | classical | learned", "class");
    for c in &classical.classes {
        let l = learned.classes.iter().find(|x| x.class == c.class);
        eprintln!("{:22} | {} | {}", c.class, c.summary(), l.map(|l| l.summary()).unwrap_or_default());
    }
    eprintln!("topology classical {:?}\ntopology learned   {:?}", classical.topology, learned.topology);
    // Floors a little under the measured figures (BENCHMARK.md has them): regressions fail.
    for (r, name) in [(&classical, "classical"), (&learned, "learned")] {
        for (cls, f1) in [
            ("solid_line", 0.93),
            ("dashed_line", 0.9),
            ("double_line", 0.95),
            ("stop_line", 0.95),
            ("crosswalk", 0.95),
            // Arrows under parked cars are read from their row (the issue's 0.9).
            ("arrow", 0.9),
        ] {
            assert!(class(r, cls).f1 >= f1, "{name} {cls}: {:?}", class(r, cls));
        }
        for c in &r.classes {
            if c.predicted > 0 && c.class.ends_with("_line") {
                // The issue's 5 cm; heights follow the DSM between vertices (measured ≤ 1.3 cm).
                assert!(c.mean_error_m <= 0.05, "{name} {}: mean error {:.3} m", c.class, c.mean_error_m);
                assert!(
                    c.mean_height_error_m <= 0.03,
                    "{name} {}: height error {:.3} m",
                    c.class,
                    c.mean_height_error_m
                );
            }
        }
        // Crossings run from edge line to edge line (the issue's 5 cm).
        assert!(class(r, "crosswalk").mean_error_m <= 0.05, "{name}: {:?}", class(r, "crosswalk"));
        assert!(r.topology.neighbour[2] >= 0.8, "{name} neighbours {:?}", r.topology);
        assert!(r.topology.successor[2] >= 0.95, "{name} successors {:?}", r.topology);
    }
    // The issue's targets the learned model meets: lines and stop lines F1 ≥ 0.95.
    for cls in ["solid_line", "dashed_line", "double_line", "stop_line"] {
        assert!(class(&learned, cls).f1 >= 0.95, "learned {cls}: {:?}", class(&learned, cls));
    }
}
