//! Save the paint mask of a window, classical or with a model's weights (development aid):
//! `maskdebug ORTHO X0 Y0 X1 Y1 [WEIGHTS]` → /tmp/mask.png.
use hdmap_layout::segment::{Classical, PaintClass, RgbTile, Segmenter};
fn main() {
    let a: Vec<String> = std::env::args().collect();
    let r = hdmap_io::raster::Raster::open(std::path::Path::new(&a[1])).expect("open");
    let g = r.georef().expect("georef");
    let (x0, y0, x1, y1): (f64, f64, f64, f64) = (
        a[2].parse().expect("x"),
        a[3].parse().expect("y"),
        a[4].parse().expect("x"),
        a[5].parse().expect("y"),
    );
    let p0 = g.world_to_pixel(x0, y1);
    let p1 = g.world_to_pixel(x1, y0);
    let win = hdmap_io::raster::Window {
        col: p0[0] as usize,
        row: p0[1] as usize,
        width: (p1[0] - p0[0]) as usize,
        height: (p1[1] - p0[1]) as usize,
    };
    let bands: Vec<Vec<u8>> = (1..=3).map(|b| r.read_window::<u8>(b, win).expect("read")).collect();
    let mut rgb = Vec::new();
    for ((r, g), b) in bands[0].iter().zip(&bands[1]).zip(&bands[2]).take(win.width * win.height) {
        rgb.extend([*r, *g, *b]);
    }
    let seg: Box<dyn Segmenter> = match a.get(6) {
        Some(model) => {
            Box::new(hdmap_layout::learned::Learned::load(std::path::Path::new(model)).expect("model"))
        }
        None => Box::new(Classical { cfg: hdmap_layout::LayoutConfig::default() }),
    };
    let m = seg.segment(&RgbTile { w: win.width, h: win.height, rgb: &rgb }, 0.08);
    let mut img = image::RgbImage::new(win.width as u32, win.height as u32);
    for (i, c) in m.iter().enumerate() {
        let v = match c {
            PaintClass::None => [0, 0, 0],
            PaintClass::White => [255, 255, 255],
            PaintClass::Yellow => [255, 200, 0],
        };
        img.put_pixel((i % win.width) as u32, (i / win.width) as u32, image::Rgb(v));
    }
    img.save("/tmp/mask.png").expect("save");
}
