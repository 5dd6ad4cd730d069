//! Optimisers against torch.optim: golden values from `golden/make_golden.py`.
//! Gradients are injected as loss = sum(p * G), so dloss/dp = G.

// The golden values are pasted as the generating script printed them.
#![allow(clippy::excessive_precision)]

use support::candle::{Device, Tensor, Var};
use support::optim::{Adam, Optimizer, Sgd};

const P0: [f32; 6] = [0.5, -1.0, 2.0, 0.0, 0.25, -0.75];
const GRADS: [[f32; 6]; 3] = [
    [0.1, -0.2, 0.3, 0.0, 1.0, -0.5],
    [-0.3, 0.2, 0.1, 0.4, -1.0, 0.25],
    [0.05, 0.05, -0.05, -0.2, 0.5, 0.0],
];

fn run(make: impl Fn(Vec<Var>) -> Box<dyn Optimizer>) -> Vec<f32> {
    let p = Var::from_tensor(&Tensor::from_slice(&P0, (2, 3), &Device::Cpu).unwrap()).unwrap();
    let mut opt = make(vec![p.clone()]);
    for g in GRADS {
        let g = Tensor::from_slice(&g, (2, 3), &Device::Cpu).unwrap();
        let grads = p.as_tensor().mul(&g).unwrap().sum_all().unwrap().backward().unwrap();
        opt.step(&grads).unwrap();
    }
    p.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

fn assert_close(got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol * (1.0 + w.abs()),
            "element {i}: got {g}, want {w} (all: {got:?})"
        );
    }
}

/// Both update paths (fused CPU loop, tensor ops for other devices) must match PyTorch.
fn check(want: [f32; 6], make: impl Fn(Vec<Var>, bool) -> Box<dyn Optimizer>) {
    for fused in [true, false] {
        assert_close(&run(|v| make(v, fused)), &want, 1e-6);
    }
}

#[test]
fn sgd_plain() {
    check([0.51500005, -1.00500000, 1.96500003, -0.02000000, 0.20000000, -0.72499996], |v, f| {
        Box::new(Sgd::new(v, 0.1).unwrap().fused(f))
    });
}

#[test]
fn sgd_momentum_weight_decay() {
    check([0.52210534, -0.98325074, 1.89361358, -0.05596000, 0.11787858, -0.65796107], |v, f| {
        Box::new(Sgd::new(v, 0.1).unwrap().momentum(0.9).weight_decay(0.01).fused(f))
    });
}

#[test]
fn sgd_nesterov() {
    check([0.53338706, -0.98701853, 1.86350465, -0.07025559, 0.08075932, -0.64019799], |v, f| {
        Box::new(Sgd::new(v, 0.1).unwrap().momentum(0.9).nesterov(true).weight_decay(0.01).fused(f))
    });
}

#[test]
fn sgd_dampening() {
    check([0.51049995, -0.98950005, 1.94050002, -0.02800000, 0.14500000, -0.68874997], |v, f| {
        Box::new(Sgd::new(v, 0.1).unwrap().momentum(0.5).dampening(0.3).fused(f))
    });
}

#[test]
fn adam_defaults() {
    check([0.47716880, -0.92039776, 1.75637376, -0.09727774, 0.13779062, -0.60277843], |v, f| {
        Box::new(Adam::new(v, 0.1).unwrap().fused(f))
    });
}

#[test]
fn adam_weight_decay_is_coupled_l2_not_adamw() {
    check([0.43493819, -0.82687843, 1.71876037, -0.09605084, 0.13386478, -0.57108587], |v, f| {
        Box::new(Adam::new(v, 0.1).unwrap().weight_decay(0.1).fused(f))
    });
}

#[test]
fn adam_betas_eps() {
    check([0.49830949, -0.99317437, 1.97668982, -0.00970506, 0.23951015, -0.73638874], |v, f| {
        Box::new(Adam::new(v, 0.01).unwrap().betas(0.8, 0.99).eps(1e-3).fused(f))
    });
}

#[test]
fn bad_settings_are_errors_not_panics() {
    assert!(Adam::new(vec![], 0.0).is_err());
    assert!(Sgd::new(vec![], -1.0).is_err());
    let p = Var::from_tensor(&Tensor::from_slice(&P0, (2, 3), &Device::Cpu).unwrap()).unwrap();
    let grads = p.as_tensor().sum_all().unwrap().backward().unwrap();
    let mut opt = Sgd::new(vec![p], 0.1).unwrap().nesterov(true);
    let err = opt.step(&grads).unwrap_err().to_string();
    assert!(err.contains("Nesterov"), "{err}");
}
