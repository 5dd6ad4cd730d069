use support::nn::{Model, Sequential};
use support::optim::{Adam, Optimizer};
use support::train::Loss;
use support::{Device, Tensor};
fn main() -> support::Result<()> {
    let m = Sequential::new("MLP").flatten().linear(784, 1024).relu().linear(1024, 10).build(0)?;
    let mut opt = Adam::new(m.params().vars(), 1e-3)?;
    let x = Tensor::rand(0f32, 1., (64, 1, 28, 28), &Device::Cpu)?;
    let y = Tensor::zeros(64, support::candle::DType::U32, &Device::Cpu)?;
    for _ in 0..300 { let l = Loss::CrossEntropy.compute(&m.forward_t(&x, true)?, &y)?; let g = l.backward()?; opt.step(&g)?; }
    Ok(())
}
