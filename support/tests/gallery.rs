//! The figure gallery: every kind of figure of `support::viz` rendered on fixed data, checked for
//! its size, for not being blank, for anti-aliased lines and text and for crisp axes, and kept as
//! PNGs in `target/tmp/gallery/` (cargo's `CARGO_TARGET_TMPDIR`) so that a reviewer can look at
//! all of them in one place.

use support::viz::{self, BarChart, Figure, Panels};
use support::{Device, Tensor};

fn gallery_dir() -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("gallery");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn px(f: &Figure, x: u32, y: u32) -> [u8; 3] {
    let i = ((y * f.width + x) * 3) as usize;
    [f.rgb[i], f.rgb[i + 1], f.rgb[i + 2]]
}

/// Saves the figure and checks what every figure must be: the expected size, some ink but not a
/// flood of it, and anti-aliasing (many grey levels between ink and paper).
fn check(name: &str, fig: &Figure, size: Option<(u32, u32)>) {
    fig.save(gallery_dir().join(format!("{name}.png"))).unwrap();
    if let Some(s) = size {
        assert_eq!((fig.width, fig.height), s, "{name}: size");
    }
    assert_eq!(fig.rgb.len(), (fig.width * fig.height * 3) as usize, "{name}: buffer");
    let ink = fig.rgb.chunks(3).filter(|p| p.iter().any(|&c| c < 250)).count();
    let frac = ink as f64 / (fig.width * fig.height) as f64;
    assert!(frac > 0.01 && frac < 0.95, "{name}: {:.3} of the pixels are ink", frac);
    let greys: std::collections::HashSet<u8> = fig
        .rgb
        .chunks(3)
        .filter(|p| p[0] == p[1] && p[1] == p[2] && p[0] > 20 && p[0] < 235)
        .map(|p| p[0])
        .collect();
    assert!(greys.len() > 20, "{name}: {} grey levels: text is not anti-aliased", greys.len());
}

/// A column of at least `min` pure black pixels: an axis drawn on whole pixels, not smeared
/// over two half-grey columns.
fn has_crisp_vertical_axis(fig: &Figure, min: u32) -> bool {
    (0..fig.width).any(|x| {
        let mut run = 0;
        let mut best = 0;
        for y in 0..fig.height {
            if px(fig, x, y) == [0, 0, 0] {
                run += 1;
                best = best.max(run);
            } else {
                run = 0;
            }
        }
        best >= min
    })
}

fn digit(k: usize) -> Tensor {
    // A ring whose radius and position depend on k: 28 x 28 in [0, 1].
    let v: Vec<f32> = (0..28 * 28)
        .map(|i| {
            let (y, x) = ((i / 28) as f32 - 14.0, (i % 28) as f32 - 10.0 - k as f32);
            let r = (x * x + y * y).sqrt();
            (1.0 - ((r - 6.0 - k as f32 * 0.5).abs() / 2.5)).max(0.0)
        })
        .collect();
    Tensor::from_vec(v, (1, 28, 28), &Device::Cpu).unwrap()
}

#[test]
fn loss_curves_are_titled_labelled_antialiased_and_crisp() {
    let train: Vec<f64> = (0..25).map(|i| 1.6 * (-(i as f64) / 6.0).exp() + 0.3).collect();
    let val: Vec<f64> =
        (0..25).map(|i| 1.6 * (-(i as f64) / 6.0).exp() + 0.5 + 0.02 * (i % 5) as f64).collect();
    let fig = viz::loss_curves("VGG3", &train, &val).unwrap();
    check("loss_curves", &fig, Some((640, 440)));
    assert!(has_crisp_vertical_axis(&fig, 250), "the y axis is not a crisp black line");
    // Anti-aliased curves: the blue line has many shades between blue and white.
    let blues: std::collections::HashSet<[u8; 3]> = fig
        .rgb
        .chunks(3)
        .filter(|p| p[2] as i32 > p[0] as i32 + 40)
        .map(|p| [p[0], p[1], p[2]])
        .collect();
    assert!(blues.len() > 10, "{} shades of blue: the lines are not anti-aliased", blues.len());
    // A flat run at ln 10 (ResNet_plain's plateau, the uniform guess) gets distinct tick labels.
    let flat: Vec<f64> =
        (0..25).map(|i| std::f64::consts::LN_10 + 1e-4 * ((i % 3) as f64 - 1.0)).collect();
    check("loss_curves_flat", &viz::loss_curves("ResNet_plain", &flat, &flat).unwrap(), None);
}

#[test]
fn charts_render() {
    let series = vec![
        ("frozen features".to_string(), vec![(100.0, 0.42), (1000.0, 0.61), (10000.0, 0.78)]),
        ("from scratch".to_string(), vec![(100.0, 0.18), (1000.0, 0.31), (10000.0, 0.55)]),
    ];
    check("lines", &viz::lines(&series, "training images", "test accuracy", true).unwrap(), None);
    // The ImageNet notebook's accuracy-vs-speed points (2026-12-02): long labels, two pairs of
    // near neighbours, one point near the right border.
    let points: Vec<(String, f64, f64)> = [
        ("AlexNet (published)", 65.6, 0.5652),
        ("VGG16 (published)", 3.6, 0.7159),
        ("Inception v3 (published)", 5.7, 0.7729),
        ("ResNet18 (published)", 31.2, 0.6976),
        ("ResNet101 (published)", 3.9, 0.7737),
        ("EfficientNet-Lite0", 19.1, 0.775),
        ("EfficientNet-Lite1", 9.8, 0.775),
        ("EfficientNet-Lite2", 6.8, 0.725),
    ]
    .iter()
    .map(|(n, x, y)| (n.to_string(), *x, *y))
    .collect();
    check("scatter", &viz::scatter(&points, "images per second", "top-1", true).unwrap(), None);
    // Measured on 40 images (with 95% intervals) apart from published 50,000-image accuracies.
    let (published, measured): (Vec<_>, Vec<_>) =
        points.iter().cloned().partition(|p| p.0.contains("published"));
    let intervals = vec![(0.625, 0.877), (0.625, 0.877), (0.572, 0.839)];
    let groups = [
        viz::PointGroup {
            name: "published (50,000 images)".into(),
            points: published,
            intervals: vec![],
        },
        viz::PointGroup {
            name: "measured here (40 images, 95% interval)".into(),
            points: measured,
            intervals,
        },
    ];
    let fig = viz::scatter_groups(&groups, "images per second", "top-1", true).unwrap();
    check("scatter_groups", &fig, None);
    let orange =
        fig.rgb.chunks(3).filter(|p| p[0] > 240 && p[1] > 110 && p[1] < 140 && p[2] < 30).count();
    assert!(orange > 200, "the second group is not drawn in its own colour ({orange} pixels)");
    let labels: Vec<String> = ["median filter", "Gaussian filter", "CNN, 1 layer", "CNN, 3 layers"]
        .map(String::from)
        .into();
    let opts = BarChart {
        title: "SNR of the denoised test images".into(),
        sorted: true,
        references: vec![("noisy input".into(), 8.6)],
    };
    let fig = viz::bar_chart_with(&labels, &[12.1, 11.4, 14.9, 17.3], "SNR (dB)", &opts).unwrap();
    check("bar_chart", &fig, None);
    assert_eq!(fig.height, 44 + 34 * 4 + 60 + 20, "one row per bar, no empty slot");
    let classes: Vec<String> = (0..10).map(|i| format!("c{i}")).collect();
    let m: Vec<Vec<f64>> =
        (0..10).map(|i| (0..10).map(|j| if i == j { 0.8 } else { 0.2 / 9.0 }).collect()).collect();
    check("matrix", &viz::matrix(&m, &classes, "confusion matrix").unwrap(), None);
}

#[test]
fn image_figures_render() {
    let digits: Vec<Tensor> = (0..6).map(digit).collect();
    let titles: Vec<String> = (0..6).map(|i| format!("digit {i}")).collect();
    check("image_grid", &viz::image_grid(&digits, &titles, 3, 120).unwrap(), None);
    let truth: Vec<String> = (0..6).map(|i| i.to_string()).collect();
    let mut pred = truth.clone();
    pred[4] = "9".into();
    let fig = viz::prediction_grid(&digits, &truth, &pred, &[0.99; 6], 3, 200).unwrap();
    check("prediction_grid", &fig, None);
    let red = fig.rgb.chunks(3).filter(|p| p[0] > 180 && p[1] < 80 && p[2] < 80).count();
    assert!(red > 500, "the mistake is not marked in red ({red} red pixels)");
    assert!(viz::prediction_grid(&digits, &truth[..2], &pred, &[], 3, 200).is_err());
    let rgb = Tensor::rand(0f32, 1., (3, 40, 60), &Device::Cpu).unwrap();
    check("image", &viz::image(&rgb, "photo.jpg").unwrap(), None);
    let w = Tensor::randn(0f32, 0.3, (6, 1, 5, 5), &Device::Cpu).unwrap();
    let fig = viz::kernels(&w, "conv1 kernels", 48).unwrap();
    check("kernels", &fig, None);
    assert!(fig.width > 6 * 48 + 70, "kernels has no room for its colour bar");
    check("heatmap", &viz::heatmap(&w.get(0).unwrap(), "kernel 0").unwrap(), Some((330, 280)));
    let panels = Panels::new()
        .row("Input", &digits[..1], None, 64)
        .unwrap()
        .row("conv1", &digits[1..5], Some((0.0, 1.0)), 64)
        .unwrap()
        .strip("dense", &Tensor::arange(0f32, 64., &Device::Cpu).unwrap())
        .unwrap()
        .strip(
            "output",
            &Tensor::new(&[0.1f32, 0.0, 0.2, 3.5, 0.0, 0.4, 0.0, 0.1, 0.3, 0.0], &Device::Cpu)
                .unwrap(),
        )
        .unwrap()
        .render()
        .unwrap();
    check("panels", &panels, None);
    let losses: Vec<f64> = (0..50).map(|i| -10.0 * (1.0 - (-(i as f64) / 10.0).exp())).collect();
    check(
        "image_and_curve",
        &viz::image_and_curve(&digits[2], "3, 3, 0.998", &losses, "loss").unwrap(),
        None,
    );
    let both =
        viz::stack(&[viz::image(&digits[0], "a").unwrap(), viz::image(&digits[1], "b").unwrap()])
            .unwrap();
    check("stack", &both, None);
}
