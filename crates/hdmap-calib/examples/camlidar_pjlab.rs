//! Targetless camera–LiDAR refinement on the real PJLab (OpenCalib) pairs, from guesses
//! perturbed by up to ±2° and ±10 cm per axis (seeded), against the reference extrinsics.
//!
//! `cargo run --release -p hdmap-calib --example camlidar_pjlab -- [OUT_DIR] [TRIALS]`
//! writes `OUT_DIR/<scene>_{before,after,reference}.png` (LiDAR points over the image at the
//! first trial's guess, its result and the reference) and prints one line per trial.

use std::path::PathBuf;

use hdmap_calib::camlidar::{self, ScenePair, TargetlessConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let out = PathBuf::from(args.get(1).map(String::as_str).unwrap_or("out/calib/camlidar"));
    let trials: u64 = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(5);
    let root = hdmap_io::testdata::shared_data("pjlab_sensorscalib").ok_or("../shared/data not found")?;
    std::fs::create_dir_all(&out)?;
    let cfg = TargetlessConfig {
        translation: std::env::var_os("WITH_TRANSLATION").is_some(),
        mi_weight: std::env::var("MI_WEIGHT").ok().map(|v| v.parse()).transpose()?.unwrap_or(1.0),
        edge_weight: std::env::var("EDGE_WEIGHT").ok().map(|v| v.parse()).transpose()?.unwrap_or(1.0),
        restarts: std::env::var("RESTARTS")
            .ok()
            .map(|v| v.parse())
            .transpose()?
            .unwrap_or(TargetlessConfig::default().restarts),
        restart_deg: std::env::var("RESTART_DEG")
            .ok()
            .map(|v| v.parse())
            .transpose()?
            .unwrap_or(TargetlessConfig::default().restart_deg),
        ..TargetlessConfig::default()
    };
    let finest = *cfg.gammas.last().ok_or("no gamma")?;
    let perturb_m: f64 = std::env::var("PERTURB_M").ok().map(|v| v.parse()).transpose()?.unwrap_or(0.10);
    let samples = hdmap_io::pjlab::lidar_camera_samples(&root)?;
    if std::env::var_os("JOINT").is_some() {
        // Pairs of one rig (same reference) scored together.
        let mut groups: Vec<Vec<&hdmap_io::pjlab::LidarCameraSample>> = Vec::new();
        for s in &samples {
            match groups.iter_mut().find(|g| g[0].camera_from_lidar == s.camera_from_lidar) {
                Some(g) => g.push(s),
                None => groups.push(vec![s]),
            }
        }
        for g in groups {
            let pairs: Vec<ScenePair> = g
                .iter()
                .map(|s| ScenePair::from_files(s.camera, &s.image, &s.scan, &cfg))
                .collect::<Result<_, _>>()?;
            let reference = g[0].camera_from_lidar;
            for seed in 0..trials {
                let guess = camlidar::perturbed_guess(&reference, seed, 2.0, perturb_m);
                let r = camlidar::refine_targetless(&pairs, &guess, &cfg)?;
                let (d0, m0) = camlidar::extrinsic_difference(&reference, &guess);
                let (d1, m1) = camlidar::extrinsic_difference(&reference, &r.camera_from_lidar);
                let names: Vec<&str> = g.iter().map(|s| s.name.as_str()).collect();
                println!(
                    "{names:?} seed {seed}: {d0:.2}° / {:.1} cm → {d1:.3}° / {:.1} cm",
                    m0 * 100.0,
                    m1 * 100.0
                );
            }
        }
        return Ok(());
    }
    for s in samples {
        for n in &s.notes {
            eprintln!("note: {n}");
        }
        let t0 = std::time::Instant::now();
        let pairs = [ScenePair::from_files(s.camera, &s.image, &s.scan, &cfg)?];
        let e = pairs[0].lidar.clone();
        println!(
            "{}: {} LiDAR edge points ({} depth, {} intensity), prepared in {:.2} s; reference score {:.3}",
            s.name,
            e.points.len(),
            e.depth_edges,
            e.intensity_edges,
            t0.elapsed().as_secs_f64(),
            camlidar::mean_score(&pairs, &s.camera_from_lidar, finest, cfg.alpha)
        );
        if std::env::var_os("PROFILE").is_some() {
            let axes = ["rx", "ry", "rz", "tx", "ty", "tz"];
            for (a, name) in axes.iter().enumerate() {
                let mut line = format!("  {name}:");
                for k in -4i32..=4 {
                    // exp_left orders (translation, rotation); the profile lists rotation first.
                    let mut d = hdmap_core::nalgebra::Vector6::zeros();
                    d[(a + 3) % 6] = if a < 3 { (k as f64 * 0.25).to_radians() } else { k as f64 * 0.05 };
                    let t = hdmap_core::pose::exp_left(&d) * s.camera_from_lidar;
                    line += &format!(
                        " {:.4}/{:.3}/{:.3}",
                        camlidar::mean_score(&pairs, &t, finest, cfg.alpha),
                        camlidar::mean_mutual_information(&pairs, &t, 0.0),
                        camlidar::mean_mutual_information(&pairs, &t, 4.0)
                    );
                }
                println!("{line}");
            }
        }
        for seed in 0..trials {
            let guess = camlidar::perturbed_guess(&s.camera_from_lidar, seed, 2.0, perturb_m);
            let t0 = std::time::Instant::now();
            let r = camlidar::refine_targetless(&pairs, &guess, &cfg)?;
            let (d0, m0) = camlidar::extrinsic_difference(&s.camera_from_lidar, &guess);
            let (d1, m1) = camlidar::extrinsic_difference(&s.camera_from_lidar, &r.camera_from_lidar);
            println!(
                "  seed {seed}: guess {d0:.2}° / {:.1} cm → {d1:.3}° / {:.1} cm; score {:.3} → {:.3}; {} evaluations, {:.1} s",
                m0 * 100.0,
                m1 * 100.0,
                camlidar::mean_score(&pairs, &guess, finest, cfg.alpha),
                camlidar::mean_score(&pairs, &r.camera_from_lidar, finest, cfg.alpha),
                r.evaluations,
                t0.elapsed().as_secs_f64()
            );
            if seed == 0 {
                let rgb = hdmap_io::image::read_image(&s.image)?.to_rgb8();
                let pts = camlidar::read_scan(&s.scan)?.points;
                let edges: Vec<[f64; 3]> = e.points.iter().map(|p| [p.x, p.y, p.z]).collect();
                let img = camlidar::overlay(&rgb, &s.camera, &edges, &s.camera_from_lidar, 60.0);
                hdmap_io::image::write_png(
                    &out.join(format!("{}_edges.png", s.name)),
                    &image::DynamicImage::ImageRgb8(img),
                )?;
                for (tag, t) in
                    [("before", guess), ("after", r.camera_from_lidar), ("reference", s.camera_from_lidar)]
                {
                    let img = camlidar::overlay(&rgb, &s.camera, &pts, &t, 60.0);
                    let p = out.join(format!("{}_{tag}.png", s.name));
                    hdmap_io::image::write_png(&p, &image::DynamicImage::ImageRgb8(img))?;
                }
            }
        }
    }
    println!("overlays in {}", out.display());
    Ok(())
}
