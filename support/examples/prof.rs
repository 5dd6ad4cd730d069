use std::time::Instant;
use support::nn::{Model, Sequential};
use support::optim::{Adam, Optimizer};
use support::train::Loss;
use support::{Device, Tensor};
fn main() -> support::Result<()> {
    let m = Sequential::new("MLP").flatten().linear(784, 1024).relu().linear(1024, 10).build(0)?;
    let mut opt = Adam::new(m.params().vars(), 1e-3)?;
    let x = Tensor::rand(0f32, 1., (64, 1, 28, 28), &Device::Cpu)?;
    let y = Tensor::zeros(64, support::candle::DType::U32, &Device::Cpu)?;
    let n = 50;
    let t = Instant::now(); for _ in 0..n { let _ = m.forward_t(&x, true)?; } println!("fwd {:?}", t.elapsed() / n);
    let t = Instant::now(); for _ in 0..n { let l = Loss::CrossEntropy.compute(&m.forward_t(&x, true)?, &y)?; let _ = l.backward()?; } println!("fwd+bwd {:?}", t.elapsed() / n);
    let l = Loss::CrossEntropy.compute(&m.forward_t(&x, true)?, &y)?; let g = l.backward()?;
    let t = Instant::now(); for _ in 0..n { opt.step(&g)?; } println!("step {:?}", t.elapsed() / n);
    let w = Tensor::rand(0f32, 1., (1024, 784), &Device::Cpu)?;
    let xf = x.flatten_from(1)?;
    let t = Instant::now(); for _ in 0..n { let _ = xf.matmul(&w.t()?)?; } println!("mm x@wT {:?}", t.elapsed() / n);
    let wt = w.t()?.contiguous()?;
    let t = Instant::now(); for _ in 0..n { let _ = xf.matmul(&wt)?; } println!("mm x@w(contig) {:?}", t.elapsed() / n);
    let go = Tensor::rand(0f32, 1., (64, 1024), &Device::Cpu)?;
    let t = Instant::now(); for _ in 0..n { let _ = go.t()?.matmul(&xf)?; } println!("mm gT@x (grad w) {:?}", t.elapsed() / n);
    let t = Instant::now(); for _ in 0..n { let _ = go.matmul(&w)?; } println!("mm g@w (grad x) {:?}", t.elapsed() / n);
    let gw = go.t()?.matmul(&xf)?; // (1024, 784)
    let z = Tensor::zeros((784, 1024), support::candle::DType::F32, &Device::Cpu)?;
    let t = Instant::now(); for _ in 0..n { let _ = z.add(&gw.t()?)?; } println!("zeros + strided grad {:?}", t.elapsed() / n);
    let t = Instant::now(); for _ in 0..n { let _ = gw.t()?.contiguous()?; } println!("transpose copy {:?}", t.elapsed() / n);
    let w1 = m.params().named()[0].1.as_tensor().clone();
    let t = Instant::now(); for _ in 0..n { let l = xf.matmul(&w1.t()?)?.sum_all()?; let _ = l.backward()?; } println!("linear-only fwd+bwd {:?}", t.elapsed() / n);
    let h = Tensor::rand(-1f32, 1., (64, 1024), &Device::Cpu)?; let hv = support::candle::Var::from_tensor(&h)?;
    let t = Instant::now(); for _ in 0..n { let l = hv.as_tensor().relu()?.sum_all()?; let _ = l.backward()?; } println!("relu fwd+bwd {:?}", t.elapsed() / n);
    let t = Instant::now(); for _ in 0..n { let _ = xf.t()?.matmul(&go)?; } println!("xT@g {:?}", t.elapsed() / n);
    let xc = xf.t()?.contiguous()?;
    let t = Instant::now(); for _ in 0..n { let _ = xc.matmul(&go)?; } println!("xT(contig)@g {:?}", t.elapsed() / n);
    let t = Instant::now(); for _ in 0..n { let _ = go.matmul(&w1)?; } println!("g@w1 {:?}", t.elapsed() / n);
    Ok(())
}
#[allow(dead_code)]
fn extra() {}
