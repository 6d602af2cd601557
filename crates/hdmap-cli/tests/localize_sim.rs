//! Issue 10's LiDAR localization check: a map of the demo world (the mapping drive's static
//! points, placed with the true trajectory and rig, movable objects left out by the
//! simulator's labels) as the NDT layer; a held-out drive through the same world (other drive
//! seed: other traffic and parked cars, other GNSS/INS errors, another wander in the lane)
//! localized against it with `hdmap localize`, scored against its ground truth.

use std::process::Command;

use hdmap_core::semantic::{SemanticClass, unpack_label};
use hdmap_core::{FrameId, nalgebra::Point3};
use hdmap_register::georef::{GeorefConfig, Georeferencer};

fn hdmap(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hdmap")).args(args).output().expect("run hdmap");
    (
        out.status.success(),
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
    )
}

#[test]
fn a_held_out_drive_localizes_against_the_ndt_layer() {
    let root = hdmap_io::testdata::repo_root();
    let mut cfg = hdmap_sim::load_config(&root.join("configs/sim/demo.toml")).expect("demo config");
    cfg.camera.rate_hz = 0.0; // LiDAR only
    let dir = tempfile::tempdir().expect("tempdir");
    let world = dir.path().join("world");
    hdmap_sim::simulate(&cfg, &world, |_, _, _| {}).expect("simulate the mapping drive");
    // The map: every second sweep, placed with the truth.
    let traj = hdmap_io::trajectory::read_pose_csv(
        &world.join(hdmap_sim::files::TRAJECTORY_TRUE),
        FrameId::World,
        FrameId::Vehicle,
    )
    .expect("true trajectory");
    let rig = hdmap_io::rig::read_rig(&world.join(hdmap_sim::files::RIG_TRUE)).expect("true rig");
    let georef = Georeferencer {
        world_from_gnss: traj,
        gnss_from_lidar: rig.transform(FrameId::Vehicle, FrameId::Lidar(0)).expect("vehicle_from_lidar"),
        lidar_time_offset_ns: rig.time_offset_ns(FrameId::Lidar(0)),
    };
    let layout =
        hdmap_io::layout::read_layout_geojson(&world.join(hdmap_sim::files::LAYOUT_GEOJSON)).expect("layout");
    let o = layout.origin.origin;
    let mut files: Vec<_> = std::fs::read_dir(world.join(hdmap_sim::files::LIDAR_DIR))
        .expect("scans")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    let mut map_pts = Vec::new();
    for f in files.iter().step_by(2) {
        let cloud = hdmap_io::pcd::read_pcd(f).expect("pcd").cloud;
        let name = f.file_stem().expect("stem").to_string_lossy().to_string();
        let labels = hdmap_io::labels::read_labels(
            &world.join(hdmap_sim::files::LABELS_DIR).join(format!("{name}.label")),
            Some(cloud.len()),
        )
        .expect("labels");
        let Ok(s) = georef.georeference(f, &cloud, &GeorefConfig::default()) else { continue };
        for (p, &i) in s.points_lidar.iter().zip(&s.kept) {
            let movable =
                SemanticClass::from_id(unpack_label(labels[i as usize]).0).is_some_and(|c| c.is_movable());
            if !movable {
                let w = s.world_from_lidar * Point3::from(*p);
                map_pts.push([w.x - o[0], w.y - o[1], w.z - o[2]]);
            }
        }
    }
    let ncfg = hdmap_features::NdtConfig::default();
    let map = hdmap_features::build_ndt(&map_pts, &layout.origin, &ncfg).expect("ndt");
    let map_dir = dir.path().join("ndt_map");
    hdmap_io::ndt::write_ndt(&map_dir, &map, ncfg.tile_m).expect("write ndt");
    // The held-out drive.
    let mut held = cfg.clone();
    held.drive.seed = Some(7);
    let heldout = dir.path().join("heldout");
    hdmap_sim::simulate(&held, &heldout, |_, _, _| {}).expect("simulate the held-out drive");
    let out = dir.path().join("loc");
    let (ok, log) = hdmap(&[
        "localize",
        "--map",
        &map_dir.to_string_lossy(),
        "--drive",
        &heldout.join("drive").to_string_lossy(),
        "--truth",
        &heldout.join(hdmap_sim::files::SCAN_POSES_TRUE).to_string_lossy(),
        "--every",
        "2",
        "--out",
        &out.to_string_lossy(),
    ]);
    eprintln!("{log}");
    assert!(ok, "{log}");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).expect("report"))
            .expect("json");
    let s = &r["score"];
    let f = |k: &str| s[k].as_f64().unwrap_or_else(|| panic!("{k} in {s}"));
    assert_eq!(r["localized"], r["scans"], "{r}");
    // The GNSS/INS prior drifts by metres in the canyons; the map brings every scan back.
    assert!(f("prior_rmse_m") > 0.5, "{s}");
    assert!(f("rmse_m") < 0.05, "{s}");
    assert!(f("within_10cm_05deg") >= 0.95, "{s}");
    assert!(out.join("localized.csv").is_file());
    // A map folder that is not one is refused, naming it.
    let (ok, log) = hdmap(&[
        "localize",
        "--map",
        &world.to_string_lossy(),
        "--drive",
        &heldout.join("drive").to_string_lossy(),
        "--out",
        &out.to_string_lossy(),
    ]);
    assert!(!ok && log.contains("metadata.json"), "{log}");
}
