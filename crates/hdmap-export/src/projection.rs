//! The map frame consumers project into: WGS84 latitude/longitude for OSM nodes, and a local
//! Cartesian frame `UTM(point) − UTM(map origin)` — what Lanelet2's `UtmProjector` and
//! Autoware's `LocalCartesianUTM` projector compute from latitude/longitude — for `local_x`,
//! `local_y` and the Autoware point-cloud tiles.
//!
//! Heights are never changed: `ele` and `z` are the layout's heights in its vertical datum.

use hdmap_core::GeoOrigin;

use crate::ExportError;

/// How map coordinates (the layout's projected CRS) relate to what consumers load.
#[derive(Debug, Clone, PartialEq)]
pub struct MapProjection {
    /// EPSG code of the map's projected CRS.
    pub map_epsg: u32,
    /// EPSG code of the UTM zone of the map origin (WGS84 / UTM, 326zz north or 327zz south).
    pub utm_epsg: u32,
    /// Map origin, WGS84 latitude in degrees.
    pub origin_lat_deg: f64,
    /// Map origin, WGS84 longitude in degrees.
    pub origin_lon_deg: f64,
    /// Map origin height, metres in the layout's vertical datum.
    pub origin_height_m: f64,
    /// Map origin in UTM (easting, northing), metres.
    pub origin_utm: [f64; 2],
}

impl MapProjection {
    /// The projection around a map origin.
    pub fn for_origin(origin: &GeoOrigin) -> Result<Self, ExportError> {
        let mut ll = [[origin.origin[0], origin.origin[1]]];
        hdmap_io::crs::transform_points(origin.epsg, 4326, &mut ll)?;
        let [lon, lat] = ll[0];
        if !(lat.is_finite() && lon.is_finite() && lat.abs() <= 84.0) {
            return Err(ExportError::Projection(format!(
                "map origin {origin} is at latitude {lat:.4}°, outside the UTM zones"
            )));
        }
        let zone = (((lon + 180.0) / 6.0).floor() as i64).clamp(0, 59) as u32 + 1;
        let utm_epsg = if lat >= 0.0 { 32600 + zone } else { 32700 + zone };
        let mut utm = [[origin.origin[0], origin.origin[1]]];
        hdmap_io::crs::transform_points(origin.epsg, utm_epsg, &mut utm)?;
        Ok(Self {
            map_epsg: origin.epsg,
            utm_epsg,
            origin_lat_deg: lat,
            origin_lon_deg: lon,
            origin_height_m: origin.origin[2],
            origin_utm: utm[0],
        })
    }

    /// Map CRS `[x, y]` → WGS84 `[lat, lon]` in degrees.
    pub fn to_lat_lon(&self, xy: &[[f64; 2]]) -> Result<Vec<[f64; 2]>, ExportError> {
        let mut p = xy.to_vec();
        hdmap_io::crs::transform_points(self.map_epsg, 4326, &mut p)?;
        Ok(p.into_iter().map(|[lon, lat]| [lat, lon]).collect())
    }

    /// Map CRS `[x, y]` → local Cartesian `UTM − UTM(origin)`, in place.
    pub fn to_local(&self, xy: &mut [[f64; 2]]) -> Result<(), ExportError> {
        hdmap_io::crs::transform_points(self.map_epsg, self.utm_epsg, xy)?;
        for p in xy.iter_mut() {
            p[0] -= self.origin_utm[0];
            p[1] -= self.origin_utm[1];
        }
        Ok(())
    }

    /// WGS84 `[lat, lon]` → map CRS `[x, y]`.
    pub fn from_lat_lon(&self, lat_lon: &[[f64; 2]]) -> Result<Vec<[f64; 2]>, ExportError> {
        let mut p: Vec<[f64; 2]> = lat_lon.iter().map(|&[lat, lon]| [lon, lat]).collect();
        hdmap_io::crs::transform_points(4326, self.map_epsg, &mut p)?;
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdmap_core::VerticalDatum;

    #[test]
    fn seoul_origin_is_in_utm_52n_and_round_trips() -> Result<(), ExportError> {
        // The simulator's origin (Korea 2000 / Central Belt 2010), Seoul.
        let o = GeoOrigin::new(5186, [198_500.0, 551_200.0, 0.0], VerticalDatum::Kngeoid18)?;
        let p = MapProjection::for_origin(&o)?;
        assert_eq!(p.utm_epsg, 32652);
        assert!(
            (37.0..38.0).contains(&p.origin_lat_deg) && (126.0..127.5).contains(&p.origin_lon_deg),
            "{p:?}"
        );
        let pts = [[198_500.0, 551_200.0], [198_700.0, 551_050.0]];
        let back = p.from_lat_lon(&p.to_lat_lon(&pts)?)?;
        for (a, b) in pts.iter().zip(&back) {
            assert!((a[0] - b[0]).abs() < 1e-6 && (a[1] - b[1]).abs() < 1e-6, "{a:?} {b:?}");
        }
        // Local frame: the origin maps to (0, 0); 200 m east stays ~200 m away (UTM scale and
        // the grid convergence between the two transverse Mercators change it by < 0.1 %).
        let mut l = pts;
        p.to_local(&mut l)?;
        assert!(l[0][0].abs() < 1e-6 && l[0][1].abs() < 1e-6);
        let d_map = (200.0f64.powi(2) + 150.0f64.powi(2)).sqrt();
        let d_local = (l[1][0].powi(2) + l[1][1].powi(2)).sqrt();
        assert!((d_local / d_map - 1.0).abs() < 1e-3, "{d_local} vs {d_map}");
        Ok(())
    }
}
