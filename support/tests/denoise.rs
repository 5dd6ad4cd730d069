//! Denoising pieces: the original's kernel (values and gradient vs PyTorch, from
//! golden/make_golden_denoise.py), filtering, SNR, noise, median filter, the training loop.

// The golden values are pasted as the generating script printed them (7 decimals).
#![allow(clippy::excessive_precision)]

use support::candle::{DType, Device, Tensor, Var};
use support::data::{DataLoader, Dataset};
use support::optim::Sgd;
use support::recipes::denoise::*;

fn close(got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() < 1e-6, "[{i}] got {g} want {w}");
    }
}

fn flat(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

#[test]
fn gaussian_kernel_and_its_gradient_match_pytorch() {
    close(
        &flat(&gaussian_kernel(&Tensor::new(0.5f32, &Device::Cpu).unwrap()).unwrap()),
        &[0.0625, 0.125, 0.0625, 0.125, 0.25, 0.125, 0.0625, 0.125, 0.0625],
    );
    let a = Var::new(0.3f32, &Device::Cpu).unwrap();
    let k = gaussian_kernel(a.as_tensor()).unwrap();
    close(
        &flat(&k),
        &[
            0.0351563, 0.1171875, 0.0351563, 0.1171875, 0.3906250, 0.1171875, 0.0351563, 0.1171875,
            0.0351563,
        ],
    );
    let w: Vec<f32> = (0..9).map(|i| (i as f32 / 10.0 - 0.3).powi(2)).collect();
    let w = Tensor::from_vec(w, (3, 3), &Device::Cpu).unwrap();
    let g = k.mul(&w).unwrap().sum_all().unwrap().backward().unwrap();
    close(&[g.get(a.as_tensor()).unwrap().to_scalar::<f32>().unwrap()], &[0.0781250]);
    // Identity and mean filter at the ends of the range.
    close(
        &flat(&gaussian_kernel(&Tensor::new(0f32, &Device::Cpu).unwrap()).unwrap()),
        &[0., 0., 0., 0., 1., 0., 0., 0., 0.],
    );
    close(
        &flat(&gaussian_kernel(&Tensor::new(1f32, &Device::Cpu).unwrap()).unwrap()),
        &[1.0 / 9.0; 9],
    );
}

#[test]
fn filtering_matches_pytorch_same_padding() {
    let x = Tensor::from_slice(
        &[0.0f32, 0.5, 1.0, 0.2, 0.3, 0.9, 0.1, 0.0, 1.0, 1.0, 0.4, 0.6, 0.2, 0.0, 0.7, 0.8],
        (1, 1, 4, 4),
        &Device::Cpu,
    )
    .unwrap();
    let k = gaussian_kernel(&Tensor::new(0.3f32, &Device::Cpu).unwrap()).unwrap();
    close(
        &flat(&filter_batch(&x, &k).unwrap()),
        &[
            0.1253906, 0.4320312, 0.5160156, 0.1988281, 0.3925782, 0.6585938, 0.3894531, 0.1546875,
            0.5980469, 0.7058594, 0.4972656, 0.4031250, 0.2304688, 0.2718750, 0.4703125, 0.4789063,
        ],
    );
    assert!(filter_batch(&x, &Tensor::zeros((2, 2), DType::F32, &Device::Cpu).unwrap()).is_err());
}

#[test]
fn snr_by_hand() {
    let clean = Tensor::from_slice(&[1.0f32, 2.0, 2.0, 1.0], (1, 1, 2, 2), &Device::Cpu).unwrap();
    let est = Tensor::from_slice(&[1.1f32, 2.0, 1.9, 1.0], (1, 1, 2, 2), &Device::Cpu).unwrap();
    // signal 10, error 0.02: 10 log10(500) = 26.9897 dB
    assert!((snr_db(&clean, &est).unwrap() - 26.989_700).abs() < 1e-4);
}

fn loader() -> NoisyLoader {
    // Smooth images (a ramp over each 4x4 image): averaging neighbours removes noise.
    let clean: Vec<u8> = (0..64 * 16).map(|i| (100 + 10 * ((i % 4) + (i / 4) % 4)) as u8).collect();
    let ds = Dataset::from_u8(clean, vec![0; 64], (1, 4, 4)).unwrap();
    NoisyLoader::new(DataLoader::new(ds, 16, false, 0).unwrap(), 0.2, 3)
}

#[test]
fn noise_is_clipped_fresh_per_pass_and_seeded() {
    let l = loader();
    let first: Vec<Vec<f32>> = l.iter().map(|b| flat(&b.unwrap().0)).collect();
    let second: Vec<Vec<f32>> = l.iter().map(|b| flat(&b.unwrap().0)).collect();
    assert_ne!(first, second, "new noise every pass");
    assert!(first.iter().flatten().all(|&v| (0.0..=1.0).contains(&v)));
    let again: Vec<Vec<f32>> = loader().iter().map(|b| flat(&b.unwrap().0)).collect();
    assert_eq!(first, again, "same seed, same noise");
    // sigma 0.2 noise on mid-grey pixels: the error's standard deviation is about 0.2.
    let (noisy, clean) = l.iter().next().unwrap().unwrap();
    let d = flat(&(noisy - clean).unwrap());
    let rms = (d.iter().map(|v| v * v).sum::<f32>() / d.len() as f32).sqrt();
    assert!(rms > 0.12 && rms < 0.22, "rms {rms}");
}

#[test]
fn median_filter_removes_an_outlier_and_keeps_flat_areas() {
    let mut v = vec![0.5f32; 25];
    v[12] = 1.0;
    let x = Tensor::from_vec(v, (1, 1, 5, 5), &Device::Cpu).unwrap();
    assert!(flat(&median_filter(&x, 3).unwrap()).iter().all(|&p| p == 0.5));
    assert!(median_filter(&x, 2).is_err());
}

#[test]
fn learning_alpha_moves_it_toward_a_better_filter_and_kernels_print_like_the_original() {
    let l = loader();
    let alpha = Var::new(0.0f32, &Device::Cpu).unwrap();
    let mut opt = Sgd::new(vec![alpha.clone()], 0.5).unwrap();
    let a = alpha.clone();
    let losses = train_denoiser(
        &|x| filter_batch(x, &gaussian_kernel(a.as_tensor())?),
        std::slice::from_ref(&alpha),
        &l,
        &mut opt,
        DenoiserFit { epochs: 3, print_every: 0 },
    )
    .unwrap();
    assert_eq!(losses.len(), 12);
    // Starting from the identity (alpha 0), smoothing helps: alpha grows, the loss falls.
    assert!(alpha.as_tensor().to_scalar::<f32>().unwrap() > 0.05);
    assert!(losses[11] < losses[0]);
    assert_eq!(
        format_kernel(&gaussian_kernel(&Tensor::new(0.5f32, &Device::Cpu).unwrap()).unwrap())
            .unwrap(),
        "[[0.0625, 0.1250, 0.0625],\n [0.1250, 0.2500, 0.1250],\n [0.0625, 0.1250, 0.0625]]"
    );
}
