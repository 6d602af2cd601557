//! Coordinate reference systems and the map origin.
//!
//! hdmap never assumes a CRS: a [`GeoOrigin`] is an input wherever world coordinates appear,
//! and readers report [`Crs`] only when the file declares one.

use std::fmt;
use std::str::FromStr;

use nalgebra::Vector3;
use serde::{Deserialize, Serialize};

use crate::CoreError;

/// A horizontal (possibly compound) coordinate reference system.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Crs {
    /// An EPSG code, e.g. 5186 (Korea 2000 / Central Belt 2010).
    Epsg(u32),
    /// A CRS known only by its OGC WKT; `epsg` is filled when the WKT identifies one.
    Wkt {
        /// The WKT text as found in the file.
        wkt: String,
        /// EPSG code the WKT resolves to, if any.
        epsg: Option<u32>,
        /// Human-readable name (the WKT's first quoted string), for reports.
        name: String,
    },
}

impl Crs {
    /// The EPSG code when one is known.
    pub fn epsg(&self) -> Option<u32> {
        match self {
            Crs::Epsg(code) => Some(*code),
            Crs::Wkt { epsg, .. } => *epsg,
        }
    }

    /// Builds a [`Crs::Wkt`] and fills its `name` from the first quoted string of the WKT.
    pub fn from_wkt(wkt: impl Into<String>, epsg: Option<u32>) -> Self {
        let wkt = wkt.into();
        let name = wkt.split('"').nth(1).unwrap_or("unnamed").to_string();
        Crs::Wkt { wkt, epsg, name }
    }

    /// Same CRS as `other`, judged by EPSG code when both have one, else by WKT text.
    pub fn same_as(&self, other: &Crs) -> bool {
        match (self.epsg(), other.epsg()) {
            (Some(a), Some(b)) => a == b,
            _ => self == other,
        }
    }
}

impl fmt::Display for Crs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Crs::Epsg(code) => write!(f, "EPSG:{code}"),
            Crs::Wkt { epsg: Some(code), name, .. } => write!(f, "EPSG:{code} ({name})"),
            Crs::Wkt { epsg: None, name, .. } => write!(f, "{name} (WKT, no EPSG code)"),
        }
    }
}

/// The reference surface that heights are measured from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerticalDatum {
    /// Height above the reference ellipsoid of the horizontal CRS (GRS80/WGS84).
    Ellipsoidal,
    /// Orthometric height above the EGM2008 geoid.
    Egm2008,
    /// Orthometric height above the EGM96 geoid.
    Egm96,
    /// Korean orthometric height (KNGeoid18 / Incheon mean sea level).
    Kngeoid18,
    /// North American Vertical Datum 1988.
    Navd88,
    /// A vertical CRS given by its EPSG code.
    Epsg(u32),
}

impl fmt::Display for VerticalDatum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerticalDatum::Ellipsoidal => write!(f, "ellipsoidal"),
            VerticalDatum::Egm2008 => write!(f, "egm2008"),
            VerticalDatum::Egm96 => write!(f, "egm96"),
            VerticalDatum::Kngeoid18 => write!(f, "kngeoid18"),
            VerticalDatum::Navd88 => write!(f, "navd88"),
            VerticalDatum::Epsg(c) => write!(f, "EPSG:{c}"),
        }
    }
}

impl FromStr for VerticalDatum {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.to_ascii_lowercase();
        Ok(match lower.as_str() {
            "ellipsoidal" => VerticalDatum::Ellipsoidal,
            "egm2008" => VerticalDatum::Egm2008,
            "egm96" => VerticalDatum::Egm96,
            "kngeoid18" => VerticalDatum::Kngeoid18,
            "navd88" => VerticalDatum::Navd88,
            _ => match lower.strip_prefix("epsg:").map(str::parse::<u32>) {
                Some(Ok(c)) => VerticalDatum::Epsg(c),
                _ => return Err(CoreError::Parse { what: "vertical datum", text: s.to_string() }),
            },
        })
    }
}

/// Where a map lives on Earth: a projected CRS (by EPSG code), the map origin expressed in
/// that CRS, and the vertical datum of heights.
///
/// Map-local coordinates are `world - origin` (metres, axes of the CRS: east, north, up for the
/// projected CRSs hdmap writes). There is deliberately no `Default`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeoOrigin {
    /// EPSG code of the horizontal projected CRS (e.g. 5186).
    pub epsg: u32,
    /// Origin in CRS units: easting, northing, height.
    pub origin: [f64; 3],
    /// Datum of the height component.
    pub vertical_datum: VerticalDatum,
}

impl GeoOrigin {
    /// A new origin; fails on non-finite coordinates.
    pub fn new(epsg: u32, origin: [f64; 3], vertical_datum: VerticalDatum) -> Result<Self, CoreError> {
        if origin.iter().any(|v| !v.is_finite()) {
            return Err(CoreError::NonFinite { index: 0 });
        }
        Ok(Self { epsg, origin, vertical_datum })
    }

    /// The horizontal CRS.
    pub fn crs(&self) -> Crs {
        Crs::Epsg(self.epsg)
    }

    /// World (CRS) coordinates to map-local coordinates.
    pub fn world_to_local(&self, world: [f64; 3]) -> Vector3<f64> {
        Vector3::new(world[0] - self.origin[0], world[1] - self.origin[1], world[2] - self.origin[2])
    }

    /// Map-local coordinates to world (CRS) coordinates.
    pub fn local_to_world(&self, local: &Vector3<f64>) -> [f64; 3] {
        [local.x + self.origin[0], local.y + self.origin[1], local.z + self.origin[2]]
    }
}

impl fmt::Display for GeoOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "EPSG:{} origin ({:.3}, {:.3}, {:.3}) heights {}",
            self.epsg, self.origin[0], self.origin[1], self.origin[2], self.vertical_datum
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_local_world_round_trip() -> Result<(), CoreError> {
        let o = GeoOrigin::new(5186, [200_000.0, 550_000.0, 35.0], VerticalDatum::Kngeoid18)?;
        let w = [200_123.456, 549_876.5, 41.25];
        let back = o.local_to_world(&o.world_to_local(w));
        for i in 0..3 {
            assert!((back[i] - w[i]).abs() < 1e-9);
        }
        assert!(GeoOrigin::new(5186, [f64::NAN, 0.0, 0.0], VerticalDatum::Egm2008).is_err());
        Ok(())
    }

    #[test]
    fn origin_rejects_unknown_keys() {
        let bad = r#"{"epsg":5186,"origin":[0,0,0],"vertical_datum":"egm2008","zone":52}"#;
        assert!(serde_json::from_str::<GeoOrigin>(bad).is_err());
        let good = r#"{"epsg":5186,"origin":[1,2,3],"vertical_datum":{"epsg":5703}}"#;
        let o: GeoOrigin = serde_json::from_str(good).expect("valid origin");
        assert_eq!(o.vertical_datum, VerticalDatum::Epsg(5703));
    }

    #[test]
    fn wkt_name_and_display() {
        let c = Crs::from_wkt(r#"PROJCS["NAD83 / UTM zone 13N",GEOGCS["NAD83"]]"#, Some(26913));
        assert_eq!(c.to_string(), "EPSG:26913 (NAD83 / UTM zone 13N)");
        assert!(c.same_as(&Crs::Epsg(26913)));
        assert!(!c.same_as(&Crs::Epsg(26912)));
        assert_eq!("EPSG:5703".parse::<VerticalDatum>().ok(), Some(VerticalDatum::Epsg(5703)));
    }
}
