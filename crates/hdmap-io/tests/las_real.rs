//! LAS/LAZ against real files (../shared/data/las_laz) and against laspy + pyproj.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hdmap_core::{ColumnValues, PointCloud};
use hdmap_io::las::{LasWriteOptions, read_las, write_las};
use hdmap_io::testdata::{run_python, shared_data};
use sha2::{Digest, Sha256};

fn las_files() -> Option<Vec<PathBuf>> {
    let dir = shared_data("las_laz")?;
    let mut files = Vec::new();
    for sub in ["laspy_tests", "pdal_tests"] {
        for e in std::fs::read_dir(dir.join(sub)).expect("readable data dir") {
            let p = e.expect("dir entry").path();
            if matches!(p.extension().and_then(|e| e.to_str()), Some("las" | "laz")) {
                files.push(p);
            }
        }
    }
    files.sort();
    assert!(files.len() >= 18, "expected the 18 LAS/LAZ files of shared/data/las_laz, found {}", files.len());
    Some(files)
}

fn sha<T: Copy>(values: impl Iterator<Item = T>, to_le: impl Fn(T) -> Vec<u8>) -> String {
    let mut h = Sha256::new();
    for v in values {
        h.update(to_le(v));
    }
    format!("{:x}", h.finalize())
}

fn extra_u8<'a>(c: &'a PointCloud, name: &str) -> &'a [u8] {
    match c.extra.get(name).map(|c| &c.values) {
        Some(ColumnValues::U8(v)) => v,
        other => panic!("{name}: {other:?}"),
    }
}

fn extra_u16<'a>(c: &'a PointCloud, name: &str) -> &'a [u16] {
    match c.extra.get(name).map(|c| &c.values) {
        Some(ColumnValues::U16(v)) => v,
        other => panic!("{name}: {other:?}"),
    }
}

/// Our digests of the dimensions las_reference.py digests, in the same dtypes.
fn our_digests(c: &PointCloud) -> BTreeMap<String, String> {
    let mut d = BTreeMap::new();
    let f64le = |v: f64| v.to_le_bytes().to_vec();
    for (k, name) in ["x", "y", "z"].iter().enumerate() {
        d.insert(name.to_string(), sha(c.positions.iter().map(|p| p[k]), f64le));
    }
    let intensity = c.intensity.as_ref().expect("LAS has intensity");
    d.insert("intensity".into(), sha(intensity.iter().map(|v| *v as u16), |v| v.to_le_bytes().to_vec()));
    let u8s = |v: &[u8]| sha(v.iter().copied(), |x| vec![x]);
    d.insert("return_number".into(), u8s(c.return_number.as_deref().expect("returns")));
    d.insert("number_of_returns".into(), u8s(c.number_of_returns.as_deref().expect("returns")));
    d.insert("classification".into(), u8s(c.classification.as_deref().expect("classes")));
    d.insert("user_data".into(), u8s(extra_u8(c, "user_data")));
    d.insert(
        "point_source_id".into(),
        sha(extra_u16(c, "point_source_id").iter().copied(), |v| v.to_le_bytes().to_vec()),
    );
    if let Some(t) = &c.time_s {
        d.insert("gps_time".into(), sha(t.iter().copied(), f64le));
    }
    if c.extra.contains_key("red") {
        for name in ["red", "green", "blue"] {
            d.insert(name.into(), sha(extra_u16(c, name).iter().copied(), |v| v.to_le_bytes().to_vec()));
        }
    }
    d
}

#[test]
fn every_file_reads_with_header_count_crs_and_laspy_identical_values() {
    let Some(files) = las_files() else { return };
    let args: Vec<&std::ffi::OsStr> = files.iter().map(|p| p.as_os_str()).collect();
    let out = run_python("las_reference.py", &args);
    let mut failures = Vec::new();
    for (line, path) in out.lines().zip(&files) {
        let reference: serde_json::Value = serde_json::from_str(line).expect("json");
        let name = path.file_name().expect("file name").to_string_lossy().to_string();
        let f = read_las(path, |_| {}).unwrap_or_else(|e| panic!("{e}"));
        // Point count equals the header's, and laspy's.
        assert_eq!(f.cloud.len() as u64, f.header.point_count, "{name}");
        assert_eq!(f.header.point_count, reference["header_count"].as_u64().expect("count"), "{name}");
        // CRS: wherever laspy/pyproj finds one we have one, and EPSG codes agree where both have one.
        if reference["has_crs"].as_bool() == Some(true) {
            assert!(f.header.crs.is_some(), "{name}: pyproj finds a CRS, we do not");
        }
        if let (Some(theirs), Some(ours)) =
            (reference["epsg"].as_u64(), f.header.crs.as_ref().and_then(|c| c.epsg()))
        {
            assert_eq!(theirs as u32, ours, "{name}: EPSG");
        }
        // Values: every digested dimension identical to laspy's.
        let ours = our_digests(&f.cloud);
        for (dim, theirs) in reference["digests"].as_object().expect("digests") {
            if ours.get(dim).map(String::as_str) != theirs.as_str() {
                failures.push(format!("{name}: {dim} differs from laspy"));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

fn bits_equal(a: &PointCloud, b: &PointCloud) -> Result<(), String> {
    if a.len() != b.len() {
        return Err(format!("{} vs {} points", a.len(), b.len()));
    }
    for (i, (p, q)) in a.positions.iter().zip(b.positions.iter()).enumerate() {
        if p.iter().zip(q.iter()).any(|(x, y)| x.to_bits() != y.to_bits()) {
            return Err(format!("position {i}: {p:?} vs {q:?}"));
        }
    }
    let f32bits =
        |v: &Option<Vec<f32>>| v.as_ref().map(|v| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>());
    let f64bits =
        |v: &Option<Vec<f64>>| v.as_ref().map(|v| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>());
    if f32bits(&a.intensity) != f32bits(&b.intensity) {
        return Err("intensity".into());
    }
    if f64bits(&a.time_s) != f64bits(&b.time_s) || a.time_base != b.time_base {
        return Err("time".into());
    }
    if a.return_number != b.return_number || a.number_of_returns != b.number_of_returns {
        return Err("returns".into());
    }
    if a.classification != b.classification {
        return Err("classification".into());
    }
    if a.extra.keys().collect::<Vec<_>>() != b.extra.keys().collect::<Vec<_>>() {
        return Err(format!("extra columns {:?} vs {:?}", a.extra.keys(), b.extra.keys()));
    }
    for (k, ca) in &a.extra {
        let cb = &b.extra[k];
        let same = ca.components == cb.components
            && match (&ca.values, &cb.values) {
                (ColumnValues::F32(x), ColumnValues::F32(y)) => {
                    x.iter().zip(y).all(|(p, q)| p.to_bits() == q.to_bits())
                }
                (ColumnValues::F64(x), ColumnValues::F64(y)) => {
                    x.iter().zip(y).all(|(p, q)| p.to_bits() == q.to_bits())
                }
                (x, y) => x == y,
            };
        if !same {
            return Err(format!("extra column {k}"));
        }
    }
    Ok(())
}

fn round_trip(path: &Path, out: &Path) {
    let a = read_las(path, |_| {}).unwrap_or_else(|e| panic!("{e}"));
    write_las(out, &a.cloud, &LasWriteOptions::like(&a.header)).unwrap_or_else(|e| panic!("{e}"));
    let b = read_las(out, |_| {}).unwrap_or_else(|e| panic!("{e}"));
    if let Err(e) = bits_equal(&a.cloud, &b.cloud) {
        panic!("{} → {}: {e}", path.display(), out.display());
    }
    assert_eq!(
        a.header.crs.as_ref().map(|c| c.epsg()),
        b.header.crs.as_ref().map(|c| c.epsg()),
        "{}",
        path.display()
    );
    let cmp = run_python("las_compare.py", &[path.as_os_str(), out.as_os_str()]);
    let v: serde_json::Value = serde_json::from_str(cmp.trim()).expect("json");
    assert_eq!(
        v["ok"],
        true,
        "laspy sees a difference between {} and {}: {}",
        path.display(),
        out.display(),
        v["mismatches"]
    );
}

#[test]
fn las_and_laz_round_trips_are_bit_exact_and_laspy_reads_them_identically() {
    let Some(files) = las_files() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    for path in &files {
        let stem = path.file_stem().expect("stem").to_string_lossy().replace('.', "_");
        for ext in ["las", "laz"] {
            round_trip(path, &dir.path().join(format!("{stem}.{ext}")));
        }
    }
}
