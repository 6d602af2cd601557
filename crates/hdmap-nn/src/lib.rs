//! hdmap-nn: the network the learned stages share. Both segmentation models of hdmap — paint
//! in orthophotos (`hdmap-layout`) and movable objects in LiDAR range images (`hdmap-dynamic`)
//! — are the same small U-Net over an image with different input and output channels; it
//! lives here so that neither stage imports the other.
//!
//! [`UNet3`]: three 2 × 2 down-sampling levels (8·w, 16·w, 32·w channels, w = `width`), a
//! bottleneck, three nearest-neighbour up-sampling levels with skip connections; each level two
//! 3 × 3 conv + batch norm + ReLU; a 1 × 1 head with one logit per class. Input height and
//! width must be multiples of 8. Variable names (`e1/c1/weight`, …, `head/bias`) are part of
//! the weights files' format.

use tch::Tensor;
use tch::nn::{self, ModuleT};

/// Two 3 × 3 conv + batch norm + ReLU.
#[derive(Debug)]
struct Block {
    c1: nn::Conv2D,
    b1: nn::BatchNorm,
    c2: nn::Conv2D,
    b2: nn::BatchNorm,
}

impl Block {
    fn new(p: &nn::Path<'_>, cin: i64, cout: i64) -> Self {
        let cc = nn::ConvConfig { padding: 1, bias: false, ..Default::default() };
        Self {
            c1: nn::conv2d(p / "c1", cin, cout, 3, cc),
            b1: nn::batch_norm2d(p / "b1", cout, Default::default()),
            c2: nn::conv2d(p / "c2", cout, cout, 3, cc),
            b2: nn::batch_norm2d(p / "b2", cout, Default::default()),
        }
    }

    fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        x.apply(&self.c1).apply_t(&self.b1, train).relu().apply(&self.c2).apply_t(&self.b2, train).relu()
    }
}

/// The U-Net (see the crate docs).
#[derive(Debug)]
pub struct UNet3 {
    e1: Block,
    e2: Block,
    e3: Block,
    mid: Block,
    d3: Block,
    d2: Block,
    d1: Block,
    head: nn::Conv2D,
}

impl UNet3 {
    /// Builds the network's variables under `p`: `inputs` channels in, `classes` logits out,
    /// channel multiplier `width`.
    pub fn new(p: &nn::Path<'_>, inputs: i64, classes: i64, width: i64) -> Self {
        let (a, b, c) = (8 * width, 16 * width, 32 * width);
        Self {
            e1: Block::new(&(p / "e1"), inputs, a),
            e2: Block::new(&(p / "e2"), a, b),
            e3: Block::new(&(p / "e3"), b, c),
            mid: Block::new(&(p / "mid"), c, c),
            d3: Block::new(&(p / "d3"), 2 * c, c),
            d2: Block::new(&(p / "d2"), c + b, b),
            d1: Block::new(&(p / "d1"), b + a, a),
            head: nn::conv2d(p / "head", a, classes, 1, Default::default()),
        }
    }
}

impl ModuleT for UNet3 {
    /// `N × inputs × H × W` → `N × classes × H × W` (H and W multiples of 8).
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let up = |t: &Tensor, like: &Tensor| {
            let s = like.size();
            t.upsample_nearest2d([s[2], s[3]], None, None)
        };
        let x1 = self.e1.forward(x, train);
        let x2 = self.e2.forward(&x1.max_pool2d_default(2), train);
        let x3 = self.e3.forward(&x2.max_pool2d_default(2), train);
        let m = self.mid.forward(&x3.max_pool2d_default(2), train);
        let u3 = self.d3.forward(&Tensor::cat(&[up(&m, &x3), x3], 1), train);
        let u2 = self.d2.forward(&Tensor::cat(&[up(&u3, &x2), x2], 1), train);
        let u1 = self.d1.forward(&Tensor::cat(&[up(&u2, &x1), x1], 1), train);
        u1.apply(&self.head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_and_variable_names() {
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let net = UNet3::new(&vs.root(), 5, 7, 1);
        let x = Tensor::zeros([2, 5, 16, 40], (tch::Kind::Float, tch::Device::Cpu));
        assert_eq!(net.forward_t(&x, false).size(), vec![2, 7, 16, 40]);
        let names: Vec<String> = vs.variables().into_keys().collect();
        for n in ["e1.c1.weight", "mid.b2.running_mean", "d1.c2.weight", "head.bias"] {
            assert!(names.iter().any(|k| k == n), "{n} missing from {names:?}");
        }
    }
}
