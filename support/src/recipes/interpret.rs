//! Looking inside a trained classifier, as the MNIST CNN notebook does: its predictions on the
//! first test images, the outputs of its hidden layers for one input, and activation
//! maximisation (the input that a class's logit likes best).

use crate::data::DataLoader;
use crate::nn::{Model, Sequential};
use crate::optim::Optimizer;
use crate::train::predict;
use crate::viz::{Figure, Panels};
use crate::{error, Result, Tensor};
use candle_core::DType;

/// The first `n` images of `loader` in one figure, each titled with its true class and, as the
/// original notebook's prediction plots, the predicted class and its softmax probability:
/// `true 7, predicted 7 (0.997)`; a mistake is framed in red ([`crate::viz::prediction_grid`]).
pub fn prediction_figure(
    model: &dyn Model,
    loader: &DataLoader,
    n: usize,
    cols: usize,
) -> Result<Figure> {
    let (images, labels) = loader.first_batch()?;
    let n = n.min(images.dim(0)?);
    let labels = labels.to_dtype(DType::U32)?.to_vec1::<u32>()?;
    let (mut pics, mut truth, mut predicted, mut confidence) =
        (Vec::with_capacity(n), Vec::new(), Vec::new(), Vec::new());
    for (i, label) in labels.iter().take(n).enumerate() {
        let img = images.get(i)?;
        let (class, conf) = predict(model, &img)?;
        truth.push(label.to_string());
        predicted.push(class.to_string());
        confidence.push(conf);
        pics.push(img);
    }
    crate::viz::prediction_grid(&pics, &truth, &predicted, &confidence, cols, 200)
}

/// Anisotropic total variation of `(N, C, H, W)` images: the sum of absolute differences between
/// vertical neighbours plus those between horizontal neighbours (as the original notebook).
pub fn total_variation(x: &Tensor) -> Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    let dv = (x.narrow(2, 1, h - 1)? - x.narrow(2, 0, h - 1)?)?.abs()?.sum_all()?;
    let dh = (x.narrow(3, 1, w - 1)? - x.narrow(3, 0, w - 1)?)?.abs()?.sum_all()?;
    dv + dh
}

/// The result of [`activation_maximization`].
#[derive(Clone, Debug)]
pub struct Maximized {
    /// The class whose logit was maximised.
    pub class: usize,
    /// The optimised input, `(C, H, W)`.
    pub image: Tensor,
    /// Loss at each iteration (before that iteration's update).
    pub losses: Vec<f64>,
    /// The model's prediction for the final image.
    pub predicted: usize,
    /// Its softmax probability.
    pub confidence: f32,
}

impl Maximized {
    /// The image titled `class, predicted, confidence` next to its loss curve.
    pub fn figure(&self) -> Result<Figure> {
        crate::viz::image_and_curve(
            &self.image,
            &format!("{}, {}, {:.3}", self.class, self.predicted, self.confidence),
            &self.losses,
            "loss",
        )
    }

    /// Shows [`Maximized::figure`] inline (evcxr calls this when a cell's value is a `Maximized`).
    pub fn evcxr_display(&self) {
        match self.figure() {
            Ok(f) => f.evcxr_display(),
            Err(e) => println!("cannot draw: {e}"),
        }
    }
}

/// The settings of [`activation_maximization`], with the original notebook's values as defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ActMaxConfig {
    /// Adam steps (500).
    pub steps: usize,
    /// Adam's learning rate (1e-2).
    pub lr: f64,
    /// Weight of the total-variation penalty (0.2).
    pub tv_weight: f64,
    /// Seed of the starting noise.
    pub seed: u64,
}

impl Default for ActMaxConfig {
    fn default() -> Self {
        ActMaxConfig { steps: 500, lr: 1e-2, tv_weight: 0.2, seed: 0 }
    }
}

/// Activation maximisation: starting from uniform noise in [0, 1) (seeded), optimise an input
/// of shape `shape` `(C, H, W)` with Adam for `cfg.steps` iterations to maximise the logit of
/// `class`, with loss `-logit[class] + tv_weight * TV(x)` ([`total_variation`]). The model is in
/// evaluation mode and its weights are not changed; the image is not clamped (as the original).
pub fn activation_maximization(
    model: &dyn Model,
    class: usize,
    shape: (usize, usize, usize),
    cfg: ActMaxConfig,
) -> Result<Maximized> {
    let ActMaxConfig { steps, lr, tv_weight, seed } = cfg;
    crate::env::fence_tensor_ids(&model.params().vars())?;
    let device = model.device();
    let (c, h, w) = shape;
    let mut rng = crate::rng::Rng::new(seed);
    let x = candle_core::Var::from_tensor(&Tensor::from_vec(
        rng.uniform_vec(c * h * w, 0.0, 1.0),
        (1, c, h, w),
        &device,
    )?)?;
    let mut opt = crate::optim::Adam::new(vec![x.clone()], lr)?;
    let mut losses = Vec::with_capacity(steps);
    for step in 0..steps {
        let logits = model.forward_t(x.as_tensor(), false)?;
        if class >= logits.dim(1)? {
            return Err(error(format!(
                "class {class} is out of range: the model has {} outputs",
                logits.dim(1)?
            )));
        }
        let loss = ((logits.get(0)?.get(class)? * -1.0)?
            + (total_variation(x.as_tensor())? * tv_weight)?)?;
        let l = loss.to_dtype(DType::F64)?.to_scalar::<f64>()?;
        if !l.is_finite() {
            return Err(error(format!(
                "activation maximisation: the loss became {l} at step {}; lower the learning \
                 rate (now {lr})",
                step + 1
            )));
        }
        losses.push(l);
        // Only the image is optimised: gradients of the weights are computed but never applied.
        opt.step(&loss.backward()?)?;
    }
    let image = x.as_tensor().detach().squeeze(0)?;
    let (predicted, confidence) = predict(model, &image)?;
    Ok(Maximized { class, image, losses, predicted, confidence })
}

/// A figure of the hidden layers of `model` for one image `(C, H, W)`: the input, then for each
/// `(layer index, title)` the output of that layer ([`Sequential::forward_all`], numbered as in
/// the printout): a row of feature maps (each scaled to its own range) for convolutional
/// outputs, a heat-map strip for vectors.
pub fn hidden_layers_figure(
    model: &Sequential,
    image: &Tensor,
    layers: &[(usize, &str)],
    cell: u32,
) -> Result<Figure> {
    let outs = model.forward_all(&image.unsqueeze(0)?)?;
    let mut panels = Panels::new().row("Input", std::slice::from_ref(image), None, cell)?;
    for &(i, title) in layers {
        let out = outs
            .get(i)
            .ok_or_else(|| {
                error(format!("the model has {} layers, there is no layer {i}", outs.len()))
            })?
            .get(0)?;
        panels = match out.rank() {
            3 => {
                let maps: Vec<Tensor> =
                    (0..out.dim(0)?).map(|c| out.get(c)).collect::<Result<_>>()?;
                panels.row(title, &maps, None, cell)?
            }
            _ => panels.strip(title, &out)?,
        };
    }
    panels.render()
}
