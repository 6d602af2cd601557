//! Every file of the broken-input corpus (`tests/corpus/`) makes `hdmap info` fail with one
//! line naming the file and the problem, a non-zero exit, and no panic.
//!
//! `cargo test -p hdmap-cli --test broken_inputs -- --ignored regenerate_corpus` rebuilds the
//! corpus from hdmap's own writers (see tests/corpus/README.md).

use std::path::{Path, PathBuf};
use std::process::Command;

use hdmap_core::{CloudFrame, Crs, FrameId, PointCloud};
use hdmap_io::las::{LasWriteOptions, write_las};
use hdmap_io::pcd::{PcdEncoding, PcdWriteOptions, write_pcd};

fn corpus() -> PathBuf {
    hdmap_io::testdata::repo_root().join("tests/corpus")
}

/// (file, words the error must contain)
const CASES: &[(&str, &str)] = &[
    ("truncated.las", "truncated"),
    ("truncated.laz", "truncated"),
    ("header_only.las", "truncated"),
    ("not_las.las", "LAS"),
    ("empty.las", "empty"),
    ("empty.pcd", "empty"),
    ("empty.tif", "empty"),
    ("empty.csv", "empty"),
    ("lying_points_binary.pcd", "truncated"),
    ("lying_points_compressed.pcd", "uncompressed size"),
    ("truncated_ascii.pcd", "truncated"),
    ("field_count_mismatch.pcd", "disagree"),
    ("corrupt_lzf.pcd", "LZF"),
    ("points_ne_width_height.pcd", "WIDTH"),
    ("no_crs.tif", "no CRS"),
    ("truncated.tif", "GDAL"),
    ("directory.las", "is a directory"),
    ("nan_in_ins.csv", "not a finite number"),
    ("unsorted.tum.txt", "not strictly increasing"),
    ("truncated_kitti.bin", "truncated"),
    ("unknown.xyz", "unsupported"),
    ("bad_quaternion.tum.txt", "quaternion"),
    ("truncated.osm", "truncated"),
    ("missing_node.osm", "node 2"),
    ("bad_latlon.osm", "lat/lon"),
];

#[test]
fn every_broken_input_fails_cleanly() {
    let exe = env!("CARGO_BIN_EXE_hdmap");
    for (name, expect) in CASES {
        let path = corpus().join(name);
        assert!(path.exists(), "corpus file {} missing", path.display());
        let out = Command::new(exe).arg("info").arg(&path).output().expect("run hdmap");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
        assert!(!stderr.contains("panicked"), "{name}: panic: {stderr}");
        assert_eq!(lines.len(), 1, "{name}: expected one error line, got:\n{stderr}");
        assert!(lines[0].contains(name), "{name}: error does not name the file: {}", lines[0]);
        assert!(
            lines[0].to_lowercase().contains(&expect.to_lowercase()),
            "{name}: error does not say `{expect}`: {}",
            lines[0]
        );
    }
    // Several files at once: each failure reported, good files still described, exit 1.
    let good = corpus().join("good.pcd");
    let out = Command::new(exe).arg("info").arg(&good).arg(corpus().join("empty.las")).output().expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("points    100"));
}

fn sample_cloud(n: usize, frame: CloudFrame, origin: [f64; 2]) -> PointCloud {
    let mut c = PointCloud::from_positions(
        frame,
        (0..n)
            .map(|i| [origin[0] + i as f64 * 0.01, origin[1] + (i % 7) as f64, 30.0 + (i % 13) as f64 * 0.1])
            .collect(),
    );
    c.intensity = Some((0..n).map(|i| (i % 255) as f32).collect());
    c.time_s = Some((0..n).map(|i| i as f64 * 1e-5).collect());
    c.ring = Some((0..n).map(|i| (i % 32) as u16).collect());
    c
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).expect("write corpus file");
}

/// `bytes` with the first occurrence of `from` replaced by `to`.
fn replace(bytes: &[u8], from: &str, to: &str) -> Vec<u8> {
    let pos = bytes.windows(from.len()).position(|w| w == from.as_bytes()).expect("text present");
    [&bytes[..pos], to.as_bytes(), &bytes[pos + from.len()..]].concat()
}

#[test]
#[ignore = "regenerates the committed corpus"]
fn regenerate_corpus() {
    let dir = corpus();
    std::fs::create_dir_all(dir.join("directory.las")).expect("mkdir");
    write(&dir.join("directory.las/.gitkeep"), b"");
    let tmp = tempfile::tempdir().expect("tmp");
    // LAS / LAZ written by hdmap, then cut.
    let cloud = sample_cloud(2000, CloudFrame::World(Crs::Epsg(5186)), [200_000.0, 550_000.0]);
    for ext in ["las", "laz"] {
        let p = tmp.path().join(format!("full.{ext}"));
        write_las(&p, &cloud, &LasWriteOptions::for_cloud(&cloud)).expect("write las");
        let bytes = std::fs::read(&p).expect("read");
        write(&dir.join(format!("truncated.{ext}")), &bytes[..bytes.len() / 2]);
        if ext == "las" {
            write(&dir.join("header_only.las"), &bytes[..200]);
        }
    }
    write(&dir.join("not_las.las"), b"x,y,z\n1,2,3\n");
    for e in ["empty.las", "empty.pcd", "empty.tif", "empty.csv"] {
        write(&dir.join(e), b"");
    }
    // PCDs with lying or broken headers and payloads.
    let sensor = sample_cloud(100, CloudFrame::Sensor(FrameId::Lidar(0)), [0.0, 0.0]);
    write_pcd(&dir.join("good.pcd"), &sensor, &PcdWriteOptions::new(PcdEncoding::Binary)).expect("pcd");
    let good = std::fs::read(dir.join("good.pcd")).expect("read");
    write(
        &dir.join("lying_points_binary.pcd"),
        &replace(&replace(&good, "WIDTH 100", "WIDTH 150"), "POINTS 100", "POINTS 150"),
    );
    write(&dir.join("field_count_mismatch.pcd"), &replace(&good, "SIZE 4 4 4 4 2 8", "SIZE 4 4 4 4 2"));
    write(&dir.join("points_ne_width_height.pcd"), &replace(&good, "POINTS 100", "POINTS 99"));
    let c = tmp.path().join("c.pcd");
    write_pcd(&c, &sensor, &PcdWriteOptions::new(PcdEncoding::BinaryCompressed)).expect("pcd");
    let comp = std::fs::read(&c).expect("read");
    write(
        &dir.join("lying_points_compressed.pcd"),
        &replace(&replace(&comp, "WIDTH 100", "WIDTH 150"), "POINTS 100", "POINTS 150"),
    );
    let mut corrupt = comp.clone();
    let data_at = corrupt.windows(23).position(|w| w == b"DATA binary_compressed\n").expect("data") + 23 + 8;
    for b in &mut corrupt[data_at..data_at + 16] {
        *b = 0xFF;
    }
    write(&dir.join("corrupt_lzf.pcd"), &corrupt);
    let a = tmp.path().join("a.pcd");
    write_pcd(&a, &sensor, &PcdWriteOptions::new(PcdEncoding::Ascii)).expect("pcd");
    let ascii = std::fs::read(&a).expect("read");
    write(&dir.join("truncated_ascii.pcd"), &ascii[..ascii.len() * 2 / 3]);
    // GeoTIFFs: one without CRS (GDAL, no SRS set), one cut short.
    {
        let driver = gdal::DriverManager::get_driver_by_name("GTiff").expect("GTiff");
        let mut ds =
            driver.create_with_band_type::<u8, _>(dir.join("no_crs.tif"), 64, 64, 1).expect("create");
        ds.set_geo_transform(&[200_000.0, 0.08, 0.0, 550_000.0, 0.0, -0.08]).expect("gt");
        let mut band = ds.rasterband(1).expect("band");
        let mut buf = gdal::raster::Buffer::new((64, 64), (0..64 * 64).map(|i| (i % 251) as u8).collect());
        band.write((0, 0), (64, 64), &mut buf).expect("write");
    }
    let good_tif = tmp.path().join("g.tif");
    let georef = hdmap_io::raster::GeoRef {
        geo_transform: [200_000.0, 0.08, 0.0, 550_000.0, 0.0, -0.08],
        crs: Crs::Epsg(5186),
    };
    let band: Vec<u8> = (0..128 * 128).map(|i| ((i * 7919) % 251) as u8).collect();
    hdmap_io::raster::write_geotiff(&good_tif, 128, 128, &[band], &georef, None).expect("tif");
    let tif = std::fs::read(&good_tif).expect("read");
    write(&dir.join("truncated.tif"), &tif[..tif.len() / 3]);
    // Trajectories and odds and ends.
    write(
        &dir.join("nan_in_ins.csv"),
        b"gps_time,x,y,z,ve,vn,vu,roll,pitch,yaw\n1.0,1,2,3,0,0,0,0,0,0\n1.01,NaN,2,3,0,0,0,0,0,0\n",
    );
    write(&dir.join("unsorted.tum.txt"), b"# t x y z qx qy qz qw\n2.0 0 0 0 0 0 0 1\n1.0 1 0 0 0 0 0 1\n");
    write(&dir.join("bad_quaternion.tum.txt"), b"1.0 0 0 0 0 0 0 2\n");
    write(&dir.join("truncated_kitti.bin"), &[0u8; 20]);
    write(&dir.join("unknown.xyz"), b"1 2 3\n");
}
