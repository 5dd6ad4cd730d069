//! `support::linear` (the op behind `nn::Linear`) against PyTorch (golden/make_golden_linear.py)
//! and against candle's own `matmul` on larger shapes, gradients included.

// The golden values are pasted as the generating script printed them.
#![allow(clippy::excessive_precision)]

use support::candle::{Device, Tensor, Var};
use support::nn::functional::linear;
use support::rng::Rng;

fn close(what: &str, got: &Tensor, want: &[f32], tol: f32) {
    let got = got.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(got.len(), want.len(), "{what} length");
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        assert!((a - b).abs() < tol * (1.0 + b.abs()), "{what}[{i}]: got {a}, want {b}");
    }
}

fn weights(n: usize, scale: f64) -> Vec<f32> {
    (0..n).map(|j| ((0.5 * j as f64 + 1.0).sin() * scale) as f32).collect()
}

#[test]
fn linear_matches_pytorch() {
    let dev = &Device::Cpu;
    let x = Var::from_tensor(
        &Tensor::from_vec(
            (0..15).map(|i| (0.37 * i as f64 + 0.1).sin() as f32).collect::<Vec<_>>(),
            (3, 5),
            dev,
        )
        .unwrap(),
    )
    .unwrap();
    let w = Var::from_tensor(
        &Tensor::from_vec(
            (0..20).map(|i| ((0.21 * i as f64).cos() / 3.0) as f32).collect::<Vec<_>>(),
            (4, 5),
            dev,
        )
        .unwrap(),
    )
    .unwrap();
    let b =
        Var::from_tensor(&Tensor::from_slice(&[0.1f32, -0.2, 0.3, 0.05], 4, dev).unwrap()).unwrap();
    let out = linear(x.as_tensor(), w.as_tensor(), Some(b.as_tensor())).unwrap();
    assert_eq!(out.dims(), &[3, 4]);
    let wgt = Tensor::from_vec(weights(12, 1.0), (3, 4), dev).unwrap();
    let grads = out.mul(&wgt).unwrap().sum_all().unwrap().backward().unwrap();
    close(
        "output",
        &out,
        &[
            0.9820446, -0.2508874, -0.6326848, -0.8272664, 0.7398628, 0.0701461, -0.0710290,
            -0.5893726, -1.1347244, -0.2980118, 1.4371886, 1.2796761,
        ],
        1e-5,
    );
    close(
        "grad x",
        grads.get(x.as_tensor()).unwrap(),
        &[
            0.0934298, -0.0229375, -0.1382970, -0.2475799, -0.3459847, 0.4420483, 0.4983032,
            0.5326636, 0.5436196, 0.5306901, -0.4613438, -0.3917971, -0.3050355, -0.2048713,
            -0.0957054,
        ],
        1e-5,
    );
    close(
        "grad w",
        grads.get(w.as_tensor()).unwrap(),
        &[
            0.8018271, 1.3057207, 1.6328912, 1.7390574, 1.6098504, 0.2054102, 0.7991771, 1.2847788,
            1.5964921, 1.6921275, -0.4412982, 0.0969670, 0.6221080, 1.0630498, 1.3601127,
            -0.9799615, -0.6289840, -0.1928765, 0.2693359, 0.6950949,
        ],
        1e-5,
    );
    close(
        "grad b",
        grads.get(b.as_tensor()).unwrap(),
        &[0.0236667, -0.0588285, -0.1269206, -0.1639380],
        1e-5,
    );
}

/// Shapes that are not multiples of the gemm's tiles, a rank-3 input, with and without bias:
/// output and every gradient equal candle's `broadcast_matmul(w.t()) + b`.
#[test]
fn linear_matches_candle_on_odd_shapes() {
    let dev = &Device::Cpu;
    let mut rng = Rng::new(3);
    for (lead, i, o, bias) in
        [(vec![37], 70, 19, true), (vec![5, 9], 33, 130, false), (vec![1], 257, 3, true)]
    {
        let n: usize = lead.iter().product();
        let mut xshape = lead.clone();
        xshape.push(i);
        let x = Var::from_tensor(
            &Tensor::from_vec(rng.uniform_vec(n * i, -1.0, 1.0), xshape, dev).unwrap(),
        )
        .unwrap();
        let w = Var::from_tensor(
            &Tensor::from_vec(rng.uniform_vec(o * i, -0.3, 0.3), (o, i), dev).unwrap(),
        )
        .unwrap();
        let b = Var::from_tensor(&Tensor::from_vec(rng.uniform_vec(o, -0.3, 0.3), o, dev).unwrap())
            .unwrap();
        let ours = linear(x.as_tensor(), w.as_tensor(), bias.then_some(b.as_tensor())).unwrap();
        let plain = x.as_tensor().broadcast_matmul(&w.as_tensor().t().unwrap()).unwrap();
        let theirs = if bias { plain.broadcast_add(b.as_tensor()).unwrap() } else { plain };
        assert_eq!(ours.dims(), theirs.dims());
        let wgt = Tensor::from_vec(weights(n * o, 0.7), ours.shape(), dev).unwrap();
        let (g1, g2) = (
            ours.mul(&wgt).unwrap().sum_all().unwrap().backward().unwrap(),
            theirs.mul(&wgt).unwrap().sum_all().unwrap().backward().unwrap(),
        );
        let v = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        close("output", &ours, &v(&theirs), 1e-5);
        close("grad x", g1.get(x.as_tensor()).unwrap(), &v(g2.get(x.as_tensor()).unwrap()), 1e-5);
        close("grad w", g1.get(w.as_tensor()).unwrap(), &v(g2.get(w.as_tensor()).unwrap()), 1e-5);
        if bias {
            close(
                "grad b",
                g1.get(b.as_tensor()).unwrap(),
                &v(g2.get(b.as_tensor()).unwrap()),
                1e-5,
            );
        }
    }
}

/// Data entering the first layer gets no gradient (nothing to compute), the weight still does;
/// a wrong input width is an error, not a panic.
#[test]
fn linear_skips_the_data_gradient_and_rejects_bad_shapes() {
    let dev = &Device::Cpu;
    let x = Tensor::from_vec(weights(12, 1.0), (3, 4), dev).unwrap();
    let w = Var::from_tensor(&Tensor::from_vec(weights(8, 0.5), (2, 4), dev).unwrap()).unwrap();
    let grads = linear(&x, w.as_tensor(), None).unwrap().sum_all().unwrap().backward().unwrap();
    assert!(grads.get(&x).is_none());
    // d sum(x W^T) / dW[o, i] = sum over rows of x[:, i]
    let col_sums: Vec<f32> =
        (0..4).map(|i| (0..3).map(|r| weights(12, 1.0)[r * 4 + i]).sum()).collect();
    close(
        "grad w",
        grads.get(w.as_tensor()).unwrap(),
        &[col_sums.clone(), col_sums].concat(),
        1e-5,
    );
    let bad = Tensor::zeros((3, 5), support::candle::DType::F32, dev).unwrap();
    let err = linear(&bad, w.as_tensor(), None).unwrap_err().to_string();
    assert!(err.contains("do not fit"), "{err}");
}
