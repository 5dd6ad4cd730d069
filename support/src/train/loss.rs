//! The loss functions of the notebooks.

use crate::{error, Result, Tensor};
use candle_core::DType;

/// The loss functions of the notebooks, both with mean reduction as in PyTorch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Loss {
    /// `nn.CrossEntropyLoss()`: log-softmax + negative log-likelihood over class logits.
    CrossEntropy,
    /// `nn.CrossEntropyLoss(label_smoothing=eps)`: the target puts `1 - eps` on the true class and
    /// spreads `eps` evenly over all classes, i.e. `(1 - eps) * NLL + eps * mean_k(-log p_k)`.
    CrossEntropyLabelSmoothing(f64),
    /// `nn.MSELoss()`.
    Mse,
}

impl Loss {
    /// The mean loss of a batch as a 0-d tensor (differentiable).
    pub fn compute(&self, output: &Tensor, target: &Tensor) -> Result<Tensor> {
        match self {
            Loss::CrossEntropy | Loss::CrossEntropyLabelSmoothing(_) => {
                if output.rank() != 2 || target.dims() != [output.dim(0)?] {
                    return Err(error(format!(
                        "cross-entropy needs logits (batch, classes) and labels (batch,), got \
                         {:?} and {:?}",
                        output.dims(),
                        target.dims()
                    )));
                }
                match *self {
                    Loss::CrossEntropyLabelSmoothing(eps) if eps != 0.0 => {
                        if !(0.0..=1.0).contains(&eps) {
                            return Err(error(format!(
                                "label smoothing must be in [0, 1], got {eps}"
                            )));
                        }
                        let logp = candle_nn::ops::log_softmax(output, 1)?;
                        let nll = logp
                            .gather(&target.to_dtype(DType::U32)?.unsqueeze(1)?, 1)?
                            .mean_all()?
                            .neg()?;
                        let uniform = logp.mean_all()?.neg()?;
                        nll.affine(1.0 - eps, 0.0)? + uniform.affine(eps, 0.0)?
                    }
                    _ => candle_nn::loss::cross_entropy(output, target),
                }
            }
            Loss::Mse => {
                if output.dims() != target.dims() {
                    return Err(error(format!(
                        "MSE needs equal shapes, got {:?} and {:?}",
                        output.dims(),
                        target.dims()
                    )));
                }
                candle_nn::loss::mse(output, target)
            }
        }
    }
}
