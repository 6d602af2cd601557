//! The segmentation model: training learns a scene it can be checked on, the shipped model
//! and its TorchScript twin label alike, and bad model files are refused with the file named.

use std::path::{Path, PathBuf};

use hdmap_dynamic::model::{self, LabelledScan, Model, MovableClass, Projection};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn tmp(name: &str) -> PathBuf {
    let d = repo().join("target/tmp/dynamic-model").join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("tmp dir");
    d
}

/// A street seen from a sensor 1.9 m up: ground, two facades, cars (boxes) and pedestrians
/// (thin columns) at random places. Points are the first hits of the sensor's rays (32 beams
/// over −25…15°, 0.8° azimuth steps), so the scan looks like a spinning LiDAR's.
fn street_scan(rng: &mut ChaCha8Rng) -> LabelledScan {
    struct Obj {
        min: [f32; 3],
        max: [f32; 3],
        class: MovableClass,
    }
    let mut objs = vec![
        Obj { min: [-80.0, 9.0, -1.9], max: [80.0, 10.0, 8.0], class: MovableClass::Static },
        Obj { min: [-80.0, -10.0, -1.9], max: [80.0, -9.0, 8.0], class: MovableClass::Static },
    ];
    for _ in 0..rng.random_range(2..6) {
        let (x, y) = (rng.random_range(-30.0f32..30.0), rng.random_range(-6.0f32..6.0));
        if x.abs() < 4.0 && y.abs() < 2.5 {
            continue;
        }
        objs.push(Obj { min: [x, y, -1.9], max: [x + 4.5, y + 1.8, -0.4], class: MovableClass::Car });
    }
    for _ in 0..rng.random_range(1..4) {
        let (x, y) = (rng.random_range(-20.0f32..20.0), rng.random_range(6.0f32..8.5));
        objs.push(Obj { min: [x, y, -1.9], max: [x + 0.5, y + 0.5, -0.2], class: MovableClass::Pedestrian });
    }
    let mut points = Vec::new();
    let mut class = Vec::new();
    for beam in 0..32 {
        let elev = (-25.0f32 + beam as f32 * 40.0 / 31.0).to_radians();
        for step in 0..450 {
            let az = (step as f32 * 0.8).to_radians();
            let d = [elev.cos() * az.cos(), elev.cos() * az.sin(), elev.sin()];
            // Nearest hit among the boxes (slab test) and the ground z = −1.9.
            let mut best = (f32::INFINITY, MovableClass::Static);
            if d[2] < 0.0 {
                best = (-1.9 / d[2], MovableClass::Ground);
            }
            for o in &objs {
                let (mut t0, mut t1) = (0.0f32, f32::INFINITY);
                for ((dk, lo), hi) in d.iter().zip(o.min).zip(o.max) {
                    if dk.abs() < 1e-9 {
                        if 0.0 < lo || 0.0 > hi {
                            t1 = -1.0;
                        }
                        continue;
                    }
                    let (a, b) = (lo / dk, hi / dk);
                    t0 = t0.max(a.min(b));
                    t1 = t1.min(a.max(b));
                }
                if t1 >= t0 && t0 > 0.0 && t0 < best.0 {
                    best = (t0, o.class);
                }
            }
            let r = best.0 + rng.random_range(-0.02..0.02);
            if (2.0..80.0).contains(&r) {
                points.push([d[0] * r, d[1] * r, d[2] * r]);
                class.push(Some(best.1));
            }
        }
    }
    LabelledScan { points, class }
}

#[test]
fn training_learns_cars_and_people_on_held_out_scans() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let train: Vec<LabelledScan> = (0..24).map(|_| street_scan(&mut rng)).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let held_out: Vec<LabelledScan> = (0..6).map(|_| street_scan(&mut rng)).collect();
    let dir = tmp("train");
    let out = dir.join("street.safetensors");
    let cfg = model::TrainConfig {
        iterations: 400,
        batch: 8,
        crop_cols: 128,
        width: 1,
        projection: Projection { rows: 32, cols: 448, fov_up_deg: 15.645, fov_down_deg: -25.645 },
        ..Default::default()
    };
    let mut losses = Vec::new();
    let card = model::train(&train, &held_out, &cfg, &out, |_, l| losses.push(l)).expect("train");
    eprintln!("losses {losses:?}");
    assert!(losses.last() < losses.first(), "loss did not fall: {losses:?}");
    let m = Model::load(&out).expect("load the trained model");
    let iou = model::evaluate(&m, &held_out).expect("evaluate").iou();
    // Held-out IoU from a fresh evaluation agrees with the card's.
    for (a, b) in iou.iter().zip(&card.val_iou) {
        assert!((a - b).abs() < 1e-9 || (a.is_nan() && b.is_nan()), "{iou:?} vs {:?}", card.val_iou);
    }
    let (car, ground, stat) = (iou[MovableClass::Car as usize], iou[MovableClass::Ground as usize], iou[0]);
    assert!(car > 0.6 && ground > 0.9 && stat > 0.8, "held-out IoU {iou:?}");
}

/// The shipped model and its TorchScript export give the same labels; the TorchScript path is
/// how a team brings a PyTorch-trained model.
#[test]
fn shipped_model_and_its_torchscript_agree() {
    let models = repo().join("datasets/models");
    let native = Model::load(&models.join("dynamic_rangenet.safetensors")).expect("native model");
    let ts = Model::load(&models.join("dynamic_rangenet_torchscript.pt")).expect("TorchScript model");
    assert_eq!(native.card().projection, ts.card().projection);
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let scan = street_scan(&mut rng);
    let a = native.label_scan(&scan.points).expect("native labels");
    let b = ts.label_scan(&scan.points).expect("TorchScript labels");
    let same = a.class.iter().zip(&b.class).filter(|(x, y)| x == y).count();
    assert!(same as f64 >= 0.999 * a.class.len() as f64, "{same} of {} labels agree", a.class.len());
    let worst = a.movable.iter().zip(&b.movable).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
    assert!(worst < 1e-3, "movable probability differs by {worst}");
}

#[test]
fn bad_model_files_are_refused_naming_the_file() {
    let dir = tmp("bad");
    let src = repo().join("datasets/models");
    // No card.
    let w = dir.join("nocard.safetensors");
    std::fs::copy(src.join("dynamic_rangenet.safetensors"), &w).expect("copy");
    let e = Model::load(&w).expect_err("no card").to_string();
    assert!(e.contains("nocard.toml"), "{e}");
    // Truncated weights.
    let w = dir.join("cut.safetensors");
    let bytes = std::fs::read(src.join("dynamic_rangenet.safetensors")).expect("read");
    std::fs::write(&w, &bytes[..bytes.len() / 2]).expect("write");
    std::fs::copy(src.join("dynamic_rangenet.toml"), dir.join("cut.toml")).expect("copy card");
    let e = Model::load(&w).expect_err("truncated").to_string();
    assert!(e.contains("cut.safetensors"), "{e}");
    // Unknown card key.
    let w = dir.join("key.safetensors");
    std::fs::copy(src.join("dynamic_rangenet.safetensors"), &w).expect("copy");
    let card = std::fs::read_to_string(src.join("dynamic_rangenet.toml")).expect("card");
    std::fs::write(dir.join("key.toml"), format!("colour = \"red\"\n{card}")).expect("write");
    let e = Model::load(&w).expect_err("unknown key").to_string();
    assert!(e.contains("key.toml") && e.contains("colour"), "{e}");
    // A TorchScript whose output is not one logit per class.
    let w = dir.join("wrong.pt");
    let x = tch::Tensor::zeros([1, 5, 32, 896], (tch::Kind::Float, tch::Device::Cpu));
    let m = tch::CModule::create_by_tracing("Identity", "forward", &[x], &mut |x| vec![x[0].relu()])
        .expect("trace");
    m.save(&w).expect("save");
    let ts_card = card.replace("architecture = \"rangeunet3\"", "architecture = \"torchscript\"");
    std::fs::write(dir.join("wrong.toml"), ts_card).expect("write");
    let e = Model::load(&w).expect_err("wrong output").to_string();
    assert!(e.contains("wrong.pt") && e.contains("expected"), "{e}");
}
