//! Conversion between [`PointCloud`] and pasture-core buffers (feature `pasture`).
//!
//! Well-known channels map onto pasture's attribute definitions (`Position3D`, `Intensity`,
//! `GpsTime`, `Classification`, `ReturnNumber`, `NumberOfReturns`), with their hdmap data type
//! where it differs (intensity is F32 here). Channels pasture has no name for become custom
//! attributes: `Ring` (U16), `ScanId` (U32), `label:<name>` (U32), and each scalar `extra`
//! column under its own name and type. The frame and time base are not part of a pasture
//! buffer and are passed back in explicitly.

use std::borrow::Cow;

use pasture_core::containers::{BorrowedBuffer, BorrowedBufferExt, HashMapBuffer};
use pasture_core::layout::{
    PointAttributeDataType, PointAttributeDefinition, PointLayout, PrimitiveType, attributes,
};
use pasture_core::nalgebra::Vector3;

use crate::{CloudFrame, Column, ColumnValues, CoreError, PointCloud, TimeBase};

fn custom(name: &str, datatype: PointAttributeDataType) -> PointAttributeDefinition {
    PointAttributeDefinition::custom(Cow::Owned(name.to_string()), datatype)
}

fn values_type(v: &ColumnValues) -> PointAttributeDataType {
    use PointAttributeDataType as T;
    match v {
        ColumnValues::U8(_) => T::U8,
        ColumnValues::I8(_) => T::I8,
        ColumnValues::U16(_) => T::U16,
        ColumnValues::I16(_) => T::I16,
        ColumnValues::U32(_) => T::U32,
        ColumnValues::I32(_) => T::I32,
        ColumnValues::U64(_) => T::U64,
        ColumnValues::I64(_) => T::I64,
        ColumnValues::F32(_) => T::F32,
        ColumnValues::F64(_) => T::F64,
    }
}

fn intensity_def() -> PointAttributeDefinition {
    attributes::INTENSITY.with_custom_datatype(PointAttributeDataType::F32)
}
fn ring_def() -> PointAttributeDefinition {
    custom("Ring", PointAttributeDataType::U16)
}
fn scan_id_def() -> PointAttributeDefinition {
    custom("ScanId", PointAttributeDataType::U32)
}

/// Converts a cloud into a columnar pasture `HashMapBuffer`. Positions become absolute f64.
/// Fails on multi-component `extra` columns, which pasture cannot hold as one attribute.
pub fn to_pasture(cloud: &PointCloud) -> Result<HashMapBuffer, CoreError> {
    cloud.validate()?;
    let mut defs = vec![attributes::POSITION_3D];
    if cloud.intensity.is_some() {
        defs.push(intensity_def());
    }
    if cloud.time_s.is_some() {
        defs.push(attributes::GPS_TIME);
    }
    if cloud.ring.is_some() {
        defs.push(ring_def());
    }
    if cloud.return_number.is_some() {
        defs.push(attributes::RETURN_NUMBER);
    }
    if cloud.number_of_returns.is_some() {
        defs.push(attributes::NUMBER_OF_RETURNS);
    }
    if cloud.classification.is_some() {
        defs.push(attributes::CLASSIFICATION);
    }
    if cloud.scan_id.is_some() {
        defs.push(scan_id_def());
    }
    for name in cloud.labels.keys() {
        defs.push(custom(&format!("label:{name}"), PointAttributeDataType::U32));
    }
    for (name, col) in &cloud.extra {
        if col.components != 1 {
            return Err(CoreError::Parse {
                what: "pasture attribute (multi-component extra column)",
                text: name.clone(),
            });
        }
        defs.push(custom(name, values_type(&col.values)));
    }
    let layout = PointLayout::from_attributes(&defs);
    let mut buffer = HashMapBuffer::with_capacity(cloud.len(), layout);
    if cloud.is_empty() {
        return Ok(buffer);
    }
    let positions: Vec<Vector3<f64>> =
        cloud.positions.iter().map(|p| Vector3::new(p[0], p[1], p[2])).collect();
    let mut pusher = buffer.begin_push_attributes();
    pusher.push_attribute_range(&attributes::POSITION_3D, &positions);
    if let Some(v) = &cloud.intensity {
        pusher.push_attribute_range(&intensity_def(), v);
    }
    if let Some(v) = &cloud.time_s {
        pusher.push_attribute_range(&attributes::GPS_TIME, v);
    }
    if let Some(v) = &cloud.ring {
        pusher.push_attribute_range(&ring_def(), v);
    }
    if let Some(v) = &cloud.return_number {
        pusher.push_attribute_range(&attributes::RETURN_NUMBER, v);
    }
    if let Some(v) = &cloud.number_of_returns {
        pusher.push_attribute_range(&attributes::NUMBER_OF_RETURNS, v);
    }
    if let Some(v) = &cloud.classification {
        pusher.push_attribute_range(&attributes::CLASSIFICATION, v);
    }
    if let Some(v) = &cloud.scan_id {
        pusher.push_attribute_range(&scan_id_def(), v);
    }
    for (name, v) in &cloud.labels {
        pusher.push_attribute_range(&custom(&format!("label:{name}"), PointAttributeDataType::U32), v);
    }
    for (name, col) in &cloud.extra {
        let def = custom(name, values_type(&col.values));
        match &col.values {
            ColumnValues::U8(v) => pusher.push_attribute_range(&def, v),
            ColumnValues::I8(v) => pusher.push_attribute_range(&def, v),
            ColumnValues::U16(v) => pusher.push_attribute_range(&def, v),
            ColumnValues::I16(v) => pusher.push_attribute_range(&def, v),
            ColumnValues::U32(v) => pusher.push_attribute_range(&def, v),
            ColumnValues::I32(v) => pusher.push_attribute_range(&def, v),
            ColumnValues::U64(v) => pusher.push_attribute_range(&def, v),
            ColumnValues::I64(v) => pusher.push_attribute_range(&def, v),
            ColumnValues::F32(v) => pusher.push_attribute_range(&def, v),
            ColumnValues::F64(v) => pusher.push_attribute_range(&def, v),
        }
    }
    pusher.done();
    Ok(buffer)
}

fn read<'a, B: BorrowedBuffer<'a>, T: PrimitiveType>(
    buffer: &'a B,
    def: &PointAttributeDefinition,
) -> Vec<T> {
    buffer.view_attribute::<T>(def).into_iter().collect()
}

/// Converts a pasture buffer into a cloud. Attributes are recognised by name; a well-known
/// attribute with a different numeric type (e.g. LAS's U16 intensity) is converted to the
/// hdmap type. Unrecognised scalar attributes become `extra` columns of their own type.
pub fn from_pasture<'a, B: BorrowedBuffer<'a>>(
    buffer: &'a B,
    frame: CloudFrame,
    time_base: TimeBase,
) -> Result<PointCloud, CoreError> {
    use PointAttributeDataType as T;
    let layout = buffer.point_layout();
    let mut pos_def = None;
    for a in layout.attributes() {
        if a.name() == attributes::POSITION_3D.name() {
            pos_def = Some(a.attribute_definition().clone());
        }
    }
    let pos_def = pos_def
        .ok_or_else(|| CoreError::Parse { what: "pasture buffer", text: "no Position3D attribute".into() })?;
    let positions: Vec<[f64; 3]> = match pos_def.datatype() {
        T::Vec3f64 => {
            read::<B, Vector3<f64>>(buffer, &pos_def).into_iter().map(|v| [v.x, v.y, v.z]).collect()
        }
        T::Vec3f32 => read::<B, Vector3<f32>>(buffer, &pos_def)
            .into_iter()
            .map(|v| [v.x as f64, v.y as f64, v.z as f64])
            .collect(),
        T::Vec3i32 => read::<B, Vector3<i32>>(buffer, &pos_def)
            .into_iter()
            .map(|v| [v.x as f64, v.y as f64, v.z as f64])
            .collect(),
        other => return Err(CoreError::Parse { what: "pasture position type", text: format!("{other:?}") }),
    };
    let mut cloud = PointCloud::from_positions(frame, positions);
    cloud.time_base = time_base;
    for a in layout.attributes() {
        let def = a.attribute_definition().clone();
        let name = def.name().to_string();
        if name == attributes::POSITION_3D.name() {
            continue;
        }
        let values: ColumnValues = match def.datatype() {
            T::U8 => ColumnValues::U8(read(buffer, &def)),
            T::I8 => ColumnValues::I8(read(buffer, &def)),
            T::U16 => ColumnValues::U16(read(buffer, &def)),
            T::I16 => ColumnValues::I16(read(buffer, &def)),
            T::U32 => ColumnValues::U32(read(buffer, &def)),
            T::I32 => ColumnValues::I32(read(buffer, &def)),
            T::U64 => ColumnValues::U64(read(buffer, &def)),
            T::I64 => ColumnValues::I64(read(buffer, &def)),
            T::F32 => ColumnValues::F32(read(buffer, &def)),
            T::F64 => ColumnValues::F64(read(buffer, &def)),
            other => {
                return Err(CoreError::Parse {
                    what: "pasture attribute type",
                    text: format!("{name}: {other:?}"),
                });
            }
        };
        let n = values.len();
        let as_f64 = |v: &ColumnValues| (0..n).map(|i| v.get_f64(i)).collect::<Vec<f64>>();
        let n_str = name.as_str();
        if n_str == attributes::INTENSITY.name() {
            cloud.intensity = Some(as_f64(&values).into_iter().map(|v| v as f32).collect());
        } else if n_str == attributes::GPS_TIME.name() {
            cloud.time_s = Some(as_f64(&values));
        } else if n_str == ring_def().name() {
            cloud.ring = Some(as_f64(&values).into_iter().map(|v| v as u16).collect());
        } else if n_str == attributes::RETURN_NUMBER.name() {
            cloud.return_number = Some(as_f64(&values).into_iter().map(|v| v as u8).collect());
        } else if n_str == attributes::NUMBER_OF_RETURNS.name() {
            cloud.number_of_returns = Some(as_f64(&values).into_iter().map(|v| v as u8).collect());
        } else if n_str == attributes::CLASSIFICATION.name() {
            cloud.classification = Some(as_f64(&values).into_iter().map(|v| v as u8).collect());
        } else if n_str == scan_id_def().name() {
            cloud.scan_id = Some(as_f64(&values).into_iter().map(|v| v as u32).collect());
        } else if let Some(label) = n_str.strip_prefix("label:") {
            cloud.labels.insert(label.to_string(), as_f64(&values).into_iter().map(|v| v as u32).collect());
        } else {
            cloud.extra.insert(name, Column::scalar(values));
        }
    }
    cloud.validate()?;
    Ok(cloud)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FrameId;

    #[test]
    fn round_trip_preserves_every_channel() -> Result<(), CoreError> {
        let n = 257;
        let mut c = PointCloud::from_positions(
            CloudFrame::Sensor(FrameId::Lidar(0)),
            (0..n).map(|i| [i as f64 * 0.5, -(i as f64), 1e5 + i as f64 * 1e-3]).collect(),
        );
        c.time_base = TimeBase::Unix;
        c.intensity = Some((0..n).map(|i| i as f32 * 0.25).collect());
        c.time_s = Some((0..n).map(|i| 1.6e9 + i as f64 * 1e-5).collect());
        c.ring = Some((0..n).map(|i| (i % 64) as u16).collect());
        c.return_number = Some((0..n).map(|i| (i % 3 + 1) as u8).collect());
        c.number_of_returns = Some(vec![3; n]);
        c.classification = Some((0..n).map(|i| (i % 19) as u8).collect());
        c.scan_id = Some((0..n).map(|i| (i / 100) as u32).collect());
        c.labels.insert("instance".into(), (0..n).map(|i| i as u32 * 7).collect());
        c.extra.insert(
            "user_data".into(),
            Column::scalar(ColumnValues::I16((0..n).map(|i| i as i16 - 100).collect())),
        );
        let buffer = to_pasture(&c)?;
        assert_eq!(buffer.len(), n);
        let back = from_pasture(&buffer, c.frame.clone(), TimeBase::Unix)?;
        assert_eq!(back.positions, c.positions);
        assert_eq!(back.intensity, c.intensity);
        assert_eq!(back.time_s, c.time_s);
        assert_eq!(back.ring, c.ring);
        assert_eq!(back.return_number, c.return_number);
        assert_eq!(back.number_of_returns, c.number_of_returns);
        assert_eq!(back.classification, c.classification);
        assert_eq!(back.scan_id, c.scan_id);
        assert_eq!(back.labels, c.labels);
        assert_eq!(back.extra, c.extra);
        assert_eq!(back, c);
        Ok(())
    }
}
