//! SemanticKITTI `.label` files: one little-endian u32 per point, class id in the low 16 bits
//! (see [`hdmap_core::semantic`]), instance id in the high 16 bits.

use std::io::Write;
use std::path::Path;

use crate::IoError;
use crate::fsutil::{check_input_file, write_atomic};

/// Reads labels; `expected_points`, when given, must match the count.
pub fn read_labels(path: &Path, expected_points: Option<usize>) -> Result<Vec<u32>, IoError> {
    check_input_file(path)?;
    let bytes = std::fs::read(path).map_err(|source| IoError::Os { path: path.to_path_buf(), source })?;
    if bytes.len() % 4 != 0 {
        return Err(IoError::Truncated {
            path: path.to_path_buf(),
            detail: format!("{} bytes is not a whole number of u32 labels", bytes.len()),
        });
    }
    let labels: Vec<u32> =
        bytes.chunks_exact(4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    if let Some(n) = expected_points.filter(|n| *n != labels.len()) {
        return Err(IoError::Format {
            path: path.to_path_buf(),
            format: "label",
            detail: format!("{} labels for a scan of {n} points", labels.len()),
        });
    }
    Ok(labels)
}

/// Writes labels, atomically.
pub fn write_labels(path: &Path, labels: &[u32]) -> Result<(), IoError> {
    let bytes: Vec<u8> = labels.iter().flat_map(|l| l.to_le_bytes()).collect();
    write_atomic(path, |w| {
        w.write_all(&bytes).map_err(|source| IoError::Os { path: path.to_path_buf(), source })
    })
}
