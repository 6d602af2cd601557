//! LAZ read and write throughput of hdmap-io vs laspy + lazrs, side by side in one run.
//!
//! Input: `autzen_trim.laz` (110 000 real points) replicated with x offsets to ≥ 10 M points,
//! built once into `target/bench-data/`. Each side reads the whole file into memory and writes
//! it back as LAZ; the best of `RUNS` wall-clock times is reported as points/s, and the ratio.
//! Both sides use every core (2 here): lazrs's parallel backend, and the las crate's
//! `laz-parallel` feature.
//!
//! Run: `tools/bench/laz_throughput.sh` (= `cargo bench -p hdmap-io --bench laz_throughput`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use hdmap_core::Positions;
use hdmap_io::las::{LasWriteOptions, read_las, write_las};
use hdmap_io::testdata::{python, repo_root, shared_data};

const COPIES: usize = 91; // 91 × 110 000 = 10.01 M points
const RUNS: usize = 3;

fn build_input(out: &Path) {
    if out.exists() {
        return;
    }
    let src = shared_data("las_laz/laspy_tests/autzen_trim.laz").expect("autzen_trim.laz");
    let f = read_las(&src, |_| {}).expect("read source");
    let one = f.cloud;
    let mut big = one.clone();
    let span_x = 1200.0; // the tile is 1177 ft wide
    let mut positions = Vec::with_capacity(one.len() * COPIES);
    for k in 0..COPIES {
        positions.extend(one.positions.iter().map(|p| [p[0] + k as f64 * span_x, p[1], p[2]]));
    }
    big.positions = Positions::Absolute(positions);
    big.intensity = one.intensity.as_ref().map(|v| v.repeat(COPIES));
    big.time_s = one.time_s.as_ref().map(|v| v.repeat(COPIES));
    big.return_number = one.return_number.as_ref().map(|v| v.repeat(COPIES));
    big.number_of_returns = one.number_of_returns.as_ref().map(|v| v.repeat(COPIES));
    big.classification = one.classification.as_ref().map(|v| v.repeat(COPIES));
    for (name, col) in big.extra.iter_mut() {
        let src = &one.extra[name].values;
        col.values = match src {
            hdmap_core::ColumnValues::U8(v) => hdmap_core::ColumnValues::U8(v.repeat(COPIES)),
            hdmap_core::ColumnValues::U16(v) => hdmap_core::ColumnValues::U16(v.repeat(COPIES)),
            hdmap_core::ColumnValues::F32(v) => hdmap_core::ColumnValues::F32(v.repeat(COPIES)),
            other => panic!("unexpected column type {other:?}"),
        };
    }
    big.validate().expect("consistent");
    std::fs::create_dir_all(out.parent().expect("dir")).expect("mkdir");
    write_las(out, &big, &LasWriteOptions::like(&f.header)).expect("write input");
}

fn best<F: FnMut()>(mut f: F) -> f64 {
    (0..RUNS)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    let dir: PathBuf = repo_root().join("target/bench-data");
    let input = dir.join("autzen_x91.laz");
    build_input(&input);
    let data = read_las(&input, |_| {}).expect("read");
    let n = data.cloud.len();
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let ours_read = best(|| {
        let f = read_las(&input, |_| {}).expect("read");
        assert_eq!(f.cloud.len(), n);
    });
    let out = dir.join("ours_out.laz");
    let opts = LasWriteOptions::like(&data.header);
    let ours_write = best(|| write_las(&out, &data.cloud, &opts).expect("write"));
    let script = repo_root().join("tools/py/laz_throughput.py");
    let py = Command::new(python())
        .arg(&script)
        .arg(&input)
        .arg(dir.join("laspy_out.laz"))
        .arg(RUNS.to_string())
        .output()
        .expect("run laspy side");
    assert!(py.status.success(), "{}", String::from_utf8_lossy(&py.stderr));
    let v: serde_json::Value = serde_json::from_slice(&py.stdout).expect("json");
    let (lp_read, lp_write) =
        (v["read_s"].as_f64().expect("read_s"), v["write_s"].as_f64().expect("write_s"));
    let mpts = |s: f64| n as f64 / s / 1e6;
    println!("LAZ throughput, {n} points (autzen_trim.laz × {COPIES}), {threads} threads, best of {RUNS}");
    println!(
        "| op    | hdmap-io (Mpts/s) | laspy {} + lazrs, {} (Mpts/s) | hdmap / laspy |",
        v["laspy"].as_str().unwrap_or("?"),
        v["backend"].as_str().unwrap_or("?")
    );
    println!("|-------|------------------:|-----------------------------:|--------------:|");
    println!(
        "| read  | {:>17.2} | {:>28.2} | {:>13.2} |",
        mpts(ours_read),
        mpts(lp_read),
        lp_read / ours_read
    );
    println!(
        "| write | {:>17.2} | {:>28.2} | {:>13.2} |",
        mpts(ours_write),
        mpts(lp_write),
        lp_write / ours_write
    );
}
