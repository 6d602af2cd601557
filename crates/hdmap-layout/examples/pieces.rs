//! dump pieces near a point
fn main() {
    let a: Vec<String> = std::env::args().collect();
    let (x, y, r): (f64, f64, f64) =
        (a[2].parse().expect("x"), a[3].parse().expect("y"), a[4].parse().expect("r"));
    let ps = hdmap_layout::pieces_of(
        std::path::Path::new(&a[1]),
        &match a.get(5) {
            Some(m) => hdmap_layout::LayoutConfig {
                segmenter: hdmap_layout::config::SegmenterKind::Learned,
                model: Some(m.into()),
                ..Default::default()
            },
            None => hdmap_layout::LayoutConfig::default(),
        },
    )
    .expect("pieces");
    for (p, s) in ps {
        if (p.centroid[0] - x).hypot(p.centroid[1] - y) < r {
            println!(
                "{:?} c=({:.1},{:.1}) len {:.2} w {:.3} span {:.2} area {:.2} yellow {:.2} axis ({:.2},{:.2})",
                s,
                p.centroid[0] - x,
                p.centroid[1] - y,
                p.length,
                p.width,
                p.span,
                p.area,
                p.yellow,
                p.axis[0],
                p.axis[1]
            );
            if s == hdmap_layout::marks::Shape::Blob {
                println!(
                    "   arrow: {:?}",
                    hdmap_layout::marks::recognise_arrow(&p, 0.08).map(|a| (a.kind, a.iou, a.direction))
                );
            }
        }
    }
}
