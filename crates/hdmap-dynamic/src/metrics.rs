//! The KTH DynamicMap_Benchmark scores, at point level on the accumulated map: SA = % of the
//! truly static points kept, DA = % of the truly dynamic points removed, AA = √(SA·DA).

use std::path::Path;

use hdmap_core::SemanticClass;
use hdmap_core::semantic::unpack_label;
use serde::Serialize;

use crate::DynamicError;
use crate::model::MovableClass;

/// SA / DA / AA with the counts behind them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Scores {
    /// Truly static points.
    pub static_points: usize,
    /// Truly dynamic points.
    pub dynamic_points: usize,
    /// Static points kept.
    pub static_kept: usize,
    /// Dynamic points removed.
    pub dynamic_removed: usize,
    /// Static accuracy, %.
    pub sa: f64,
    /// Dynamic accuracy, %.
    pub da: f64,
    /// Associated accuracy √(SA·DA), %.
    pub aa: f64,
}

/// Scores of `removed` (per point) against `truth_dynamic`. Panics if the lengths differ
/// (a caller bug: both describe the same points).
pub fn score(removed: &[bool], truth_dynamic: &[bool]) -> Scores {
    assert_eq!(removed.len(), truth_dynamic.len(), "one decision per labelled point");
    let (mut static_points, mut dynamic_points, mut static_kept, mut dynamic_removed) = (0, 0, 0, 0);
    for (&r, &d) in removed.iter().zip(truth_dynamic) {
        if d {
            dynamic_points += 1;
            dynamic_removed += r as usize;
        } else {
            static_points += 1;
            static_kept += !r as usize;
        }
    }
    let pct = |a: usize, b: usize| if b == 0 { f64::NAN } else { 100.0 * a as f64 / b as f64 };
    let sa = pct(static_kept, static_points);
    let da = pct(dynamic_removed, dynamic_points);
    Scores { static_points, dynamic_points, static_kept, dynamic_removed, sa, da, aa: (sa * da).sqrt() }
}

/// Ground truth for a registered cloud: the packed SemanticKITTI label of each point, from
/// `.label` files (`labels_dir/<scan stem>.label`) and the cloud's provenance (`source`: per
/// point `u32` scan index into `scan_files`, `u32` point index, as `hdmap register` writes
/// `cloud_source.bin`).
pub fn truth_labels(
    labels_dir: &Path,
    scan_files: &[String],
    source: &[u8],
) -> Result<Vec<u32>, DynamicError> {
    let bad = |message: String| DynamicError::Input { what: labels_dir.display().to_string(), message };
    let records = crate::provenance(source).map_err(bad)?;
    let mut labels: Vec<Option<Vec<u32>>> = vec![None; scan_files.len()];
    let mut out = Vec::with_capacity(records.len());
    for (k, i) in records {
        let name = scan_files
            .get(k)
            .ok_or_else(|| bad(format!("scan index {k} beyond {} scans", scan_files.len())))?;
        if labels[k].is_none() {
            let stem =
                Path::new(name).file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
            labels[k] = Some(hdmap_io::labels::read_labels(&labels_dir.join(format!("{stem}.label")), None)?);
        }
        let l = labels[k]
            .as_ref()
            .and_then(|v| v.get(i))
            .ok_or_else(|| bad(format!("{name}: no label for point {i}")))?;
        out.push(*l);
    }
    Ok(out)
}

/// Whether each labelled point should leave the map: moving classes (≥ 252) — the
/// benchmark's truth — or, with `include_parked`, every movable class.
pub fn truth_removal(labels: &[u32], include_parked: bool) -> Vec<bool> {
    labels
        .iter()
        .map(|l| {
            let (class, _) = unpack_label(*l);
            let c = SemanticClass::from_id(class);
            if include_parked {
                c.and_then(MovableClass::of_semantic).is_some_and(MovableClass::movable)
            } else {
                c.is_some_and(|c| c.is_moving())
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_follow_the_benchmark_definitions() {
        // 8 static (2 wrongly removed), 4 dynamic (3 removed).
        let truth = [false, false, false, false, false, false, false, false, true, true, true, true];
        let removed = [true, false, true, false, false, false, false, false, true, true, false, true];
        let s = score(&removed, &truth);
        assert_eq!((s.static_points, s.static_kept, s.dynamic_points, s.dynamic_removed), (8, 6, 4, 3));
        assert!((s.sa - 75.0).abs() < 1e-12 && (s.da - 75.0).abs() < 1e-12 && (s.aa - 75.0).abs() < 1e-12);
    }
}
