//! File-system helpers: input checks and atomic writes.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::IoError;

/// Checks that `path` is an existing, non-empty regular file and returns its size in bytes.
pub fn check_input_file(path: &Path) -> Result<u64, IoError> {
    let meta = std::fs::metadata(path).map_err(|source| IoError::Os { path: path.to_path_buf(), source })?;
    if meta.is_dir() {
        return Err(IoError::IsDirectory { path: path.to_path_buf() });
    }
    if meta.len() == 0 {
        return Err(IoError::Empty { path: path.to_path_buf() });
    }
    Ok(meta.len())
}

/// Writes a file atomically: `write` fills a temporary file in the target's directory, which
/// is renamed over `path` only when `write` succeeded and the data is flushed to disk. A killed
/// process leaves either the old file or the new one, never half of one.
pub fn write_atomic<F>(path: &Path, write: F) -> Result<(), IoError>
where
    F: FnOnce(&mut BufWriter<File>) -> Result<(), IoError>,
{
    let os = |source| IoError::Os { path: path.to_path_buf(), source };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let tmp =
        tempfile::Builder::new().prefix(&format!(".{name}.")).suffix(".tmp").tempfile_in(&dir).map_err(os)?;
    let (file, tmp_path) = tmp.into_parts();
    let mut writer = BufWriter::new(file);
    write(&mut writer)?;
    writer.flush().map_err(os)?;
    let file = writer.into_inner().map_err(|e| os(e.into_error()))?;
    file.sync_all().map_err(os)?;
    // Temporary files are created private (0600); an output is an ordinary file.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o644)).map_err(os)?;
    }
    tmp_path.persist(path).map_err(|e| os(e.error))?;
    Ok(())
}

/// Writes `bytes` to `path` atomically (see [`write_atomic`]).
pub fn write_bytes_atomic(path: &Path, bytes: &[u8]) -> Result<(), IoError> {
    write_atomic(path, |w| {
        w.write_all(bytes).map_err(|source| IoError::Os { path: path.to_path_buf(), source })
    })
}

/// Runs `write` on a temporary path beside `path` (same extension, for libraries that pick the
/// format by extension) and renames it over `path` when `write` succeeds.
pub fn write_atomic_via_path<F>(path: &Path, write: F) -> Result<(), IoError>
where
    F: FnOnce(&Path) -> Result<(), IoError>,
{
    let os = |source| IoError::Os { path: path.to_path_buf(), source };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let ext = path.extension().map(|e| format!(".{}", e.to_string_lossy())).unwrap_or_default();
    let tmp_dir = tempfile::Builder::new().prefix(&format!(".{name}.")).tempdir_in(&dir).map_err(os)?;
    let tmp_path = tmp_dir.path().join(format!("out{ext}"));
    write(&tmp_path)?;
    std::fs::rename(&tmp_path, path).map_err(os)?;
    Ok(())
}

/// Writes a folder as a whole: `build` fills a temporary folder beside `dir`, which then
/// replaces `dir` (the previous folder is moved aside and removed once the new one is in
/// place; if that fails it is put back). A killed process leaves the previous folder either in
/// place or as `.<name>.old` beside it, never a half-written one at `dir`.
pub fn replace_dir_atomic<F>(dir: &Path, build: F) -> Result<(), IoError>
where
    F: FnOnce(&Path) -> Result<(), IoError>,
{
    let os = |path: &Path| {
        let path = path.to_path_buf();
        move |source| IoError::Os { path: path.clone(), source }
    };
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(os(&parent))?;
    let name = dir.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| "out".into());
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempdir_in(&parent)
        .map_err(os(&parent))?;
    build(tmp.path())?;
    let old = parent.join(format!(".{name}.old"));
    if dir.exists() {
        let _ = std::fs::remove_dir_all(&old);
        std::fs::rename(dir, &old).map_err(os(dir))?;
    }
    let built = tmp.keep();
    if let Err(source) = std::fs::rename(&built, dir) {
        if old.exists() {
            let _ = std::fs::rename(&old, dir);
        }
        let _ = std::fs::remove_dir_all(&built);
        return Err(IoError::Os { path: dir.to_path_buf(), source });
    }
    let _ = std::fs::remove_dir_all(&old);
    Ok(())
}

/// Bytes of every file under `dir` (0 where it cannot be read): the size of a written layer.
pub fn tree_size(dir: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else { return 0 };
    rd.filter_map(Result::ok)
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => tree_size(&e.path()),
            _ => e.metadata().map(|m| m.len()).unwrap_or(0),
        })
        .sum()
}
