//! Resolving CRS definitions found in files (WKT, GeoTIFF keys) to [`Crs`] values with EPSG
//! codes, through GDAL/PROJ.

use gdal::spatial_ref::SpatialRef;
use hdmap_core::Crs;

/// Parses a WKT (WKT1 or WKT2, also ESRI flavour) and identifies its EPSG code when GDAL can.
/// For compound CRSs the code of the horizontal part is returned. `None` when GDAL cannot
/// parse the text at all.
pub fn crs_from_wkt(wkt: &str) -> Option<Crs> {
    crate::init_gdal();
    let wkt = wkt.trim_end_matches('\0').trim();
    if wkt.is_empty() {
        return None;
    }
    let srs = SpatialRef::from_wkt(wkt).or_else(|_| SpatialRef::from_esri(wkt)).ok()?;
    Some(Crs::from_wkt(wkt, horizontal_epsg(srs)))
}

/// The EPSG code of the horizontal component of a spatial reference, if identifiable.
pub fn horizontal_epsg(mut srs: SpatialRef) -> Option<u32> {
    if srs.is_compound() {
        for node in ["COMPD_CS|PROJCS|AUTHORITY", "COMPD_CS|GEOGCS|AUTHORITY"] {
            if let (Ok(Some(name)), Ok(Some(code))) =
                (srs.get_attr_value(node, 0), srs.get_attr_value(node, 1))
                && name.eq_ignore_ascii_case("EPSG")
            {
                return code.parse().ok();
            }
        }
    }
    let code_of = |s: &SpatialRef| match (s.auth_name(), s.auth_code()) {
        (Some(name), Ok(code)) if name.eq_ignore_ascii_case("EPSG") && code > 0 => Some(code as u32),
        _ => None,
    };
    if let Some(c) = code_of(&srs) {
        return Some(c);
    }
    if srs.auto_identify_epsg().is_ok()
        && let Some(c) = code_of(&srs)
    {
        return Some(c);
    }
    find_epsg_match(&srs)
}

/// Asks PROJ (through GDAL's `OSRFindMatches`) for the best EPSG match of a CRS that carries no
/// authority code, as `pyproj`'s `to_epsg(min_confidence=70)` does. `None` below 70 %.
#[allow(unsafe_code)]
fn find_epsg_match(srs: &SpatialRef) -> Option<u32> {
    use std::ffi::CStr;
    let mut n: std::ffi::c_int = 0;
    let mut confidence: *mut std::ffi::c_int = std::ptr::null_mut();
    // SAFETY: `srs` is a live handle for the duration of the call; GDAL returns either null or an
    // array of `n` owned handles plus an `n`-int confidence array, both freed below with the
    // functions GDAL documents for them. Strings returned by OSRGetAuthority* are owned by the
    // handle and copied before it is freed.
    unsafe {
        let matches =
            gdal_sys::OSRFindMatches(srs.to_c_hsrs(), std::ptr::null_mut(), &mut n, &mut confidence);
        if matches.is_null() {
            return None;
        }
        let mut best = None;
        for i in 0..n.max(0) as usize {
            let h = *matches.add(i);
            let conf = if confidence.is_null() { 0 } else { *confidence.add(i) };
            if conf < 70 || h.is_null() {
                continue;
            }
            let name = gdal_sys::OSRGetAuthorityName(h, std::ptr::null());
            let code = gdal_sys::OSRGetAuthorityCode(h, std::ptr::null());
            if name.is_null() || code.is_null() {
                continue;
            }
            if CStr::from_ptr(name).to_string_lossy().eq_ignore_ascii_case("EPSG") {
                best = CStr::from_ptr(code).to_string_lossy().parse::<u32>().ok();
                if best.is_some() {
                    break;
                }
            }
        }
        gdal_sys::OSRFreeSRSArray(matches);
        if !confidence.is_null() {
            gdal_sys::VSIFree(confidence.cast());
        }
        best
    }
}

/// A CRS from an EPSG code, with its WKT and name filled from GDAL's database. Falls back to
/// a bare [`Crs::Epsg`] when GDAL does not know the code.
pub fn crs_from_epsg(code: u32) -> Crs {
    crate::init_gdal();
    match SpatialRef::from_epsg(code).and_then(|s| s.to_wkt()) {
        Ok(wkt) => Crs::from_wkt(wkt, Some(code)),
        Err(_) => Crs::Epsg(code),
    }
}

/// OGC WKT (WKT1 as GDAL writes it) for an EPSG code.
pub fn wkt_for_epsg(code: u32) -> Option<String> {
    crate::init_gdal();
    SpatialRef::from_epsg(code).and_then(|s| s.to_wkt()).ok()
}

/// Transforms points `[x, y]` (longitude/latitude order for geographic CRSs) from EPSG `from`
/// to EPSG `to`, in place.
pub fn transform_points(from: u32, to: u32, pts: &mut [[f64; 2]]) -> Result<(), crate::IoError> {
    use gdal::spatial_ref::{AxisMappingStrategy, CoordTransform};
    crate::init_gdal();
    let fail = |e: gdal::errors::GdalError| crate::IoError::Unsupported {
        path: std::path::PathBuf::from(format!("EPSG:{from}→EPSG:{to}")),
        detail: e.to_string(),
    };
    let mut a = SpatialRef::from_epsg(from).map_err(fail)?;
    let mut b = SpatialRef::from_epsg(to).map_err(fail)?;
    a.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    b.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    let ct = CoordTransform::new(&a, &b).map_err(fail)?;
    let mut xs: Vec<f64> = pts.iter().map(|p| p[0]).collect();
    let mut ys: Vec<f64> = pts.iter().map(|p| p[1]).collect();
    let mut zs = vec![0.0; pts.len()];
    ct.transform_coords(&mut xs, &mut ys, &mut zs).map_err(fail)?;
    for (p, (x, y)) in pts.iter_mut().zip(xs.into_iter().zip(ys)) {
        *p = [x, y];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epsg_codes_survive_wkt_round_trip() {
        for code in [5186u32, 26913, 4326, 32652, 5179] {
            let wkt = wkt_for_epsg(code).expect("GDAL knows the code");
            let crs = crs_from_wkt(&wkt).expect("parses");
            assert_eq!(crs.epsg(), Some(code), "{wkt}");
        }
        assert!(crs_from_wkt("not a crs").is_none());
    }
}
