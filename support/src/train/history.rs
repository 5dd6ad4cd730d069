//! [`History`]: what a training run records per epoch.

use crate::viz::Figure;
use crate::{error, Result, Tensor};
use std::collections::HashMap;

/// Per-epoch record of a training run; displays as its loss curves in a notebook.
#[derive(Clone, Debug, Default)]
pub struct History {
    /// Mean training loss of each epoch (sample-weighted over its batches).
    pub train_loss: Vec<f64>,
    /// Validation loss after each epoch.
    pub val_loss: Vec<f64>,
    /// Validation accuracy after each epoch.
    pub val_accuracy: Vec<f64>,
    /// Wall time of each epoch in seconds (training + validation pass).
    pub epoch_seconds: Vec<f64>,
    /// Title of the loss plot, e.g. the model's name (empty: "training and validation loss");
    /// not saved with the history.
    pub title: String,
}

impl History {
    /// Mean wall time per epoch in seconds (what the original prints as "Average time per epoch").
    pub fn seconds_per_epoch(&self) -> f64 {
        if self.epoch_seconds.is_empty() {
            0.0
        } else {
            self.epoch_seconds.iter().sum::<f64>() / self.epoch_seconds.len() as f64
        }
    }

    /// Median wall time per epoch in seconds: what an epoch costs when a few epochs of a long
    /// run were slowed by something else on the machine (the mean counts them in full).
    pub fn median_epoch_seconds(&self) -> f64 {
        let mut t = self.epoch_seconds.clone();
        t.sort_by(f64::total_cmp);
        match t.len() {
            0 => 0.0,
            n if n % 2 == 1 => t[n / 2],
            n => (t[n / 2 - 1] + t[n / 2]) / 2.0,
        }
    }

    /// The loss curves: training and validation loss per epoch (1..N), titled [`History::title`].
    pub fn plot(&self) -> Result<Figure> {
        let title =
            if self.title.is_empty() { "training and validation loss" } else { &self.title };
        crate::viz::loss_curves(title, &self.train_loss, &self.val_loss)
    }

    /// The history with its plot titled `title`: `history.titled("VGG3").plot()`.
    pub fn titled(mut self, title: &str) -> Self {
        self.title = title.to_string();
        self
    }

    /// The per-epoch log lines `train_model` prints, and its closing "Average time per epoch".
    pub fn print_log(&self) {
        self.print_epochs();
        println!();
        println!("Average time per epoch: {:.3}s", self.seconds_per_epoch());
    }

    /// The per-epoch lines alone.
    pub(crate) fn print_epochs(&self) {
        (0..self.val_loss.len()).for_each(|i| println!("{}", self.epoch_line(i)));
    }

    /// The log line of epoch `i` (0-based), as the original prints it.
    pub(crate) fn epoch_line(&self, i: usize) -> String {
        let (t, v, a) = (self.train_loss[i], self.val_loss[i], self.val_accuracy[i]);
        format!(
            " epoch: {:>2}, training loss: {t:.3}, validation loss {v:.3}, validation accuracy \
             {a:.3}",
            i + 1
        )
    }

    /// Writes the history to a `.safetensors` file (four f64 vectors).
    pub fn save(&self, path: impl AsRef<std::path::Path>) -> Result<()> {
        let map: HashMap<String, Tensor> = self.tensors("")?.into_iter().collect();
        candle_core::safetensors::save(&map, path.as_ref())
    }

    /// Reads a history written by [`History::save`].
    pub fn load(path: impl AsRef<std::path::Path>) -> Result<Self> {
        let path = path.as_ref();
        let map = candle_core::safetensors::load(path, &candle_core::Device::Cpu).map_err(|e| {
            error(format!(
                "{} is not a saved history ({e}); delete it to train again",
                path.display()
            ))
        })?;
        History::from_tensors(&map, "", &path.display().to_string())
    }

    /// The four vectors as f64 tensors named `{prefix}train_loss` etc.
    pub(crate) fn tensors(&self, prefix: &str) -> Result<Vec<(String, Tensor)>> {
        let dev = candle_core::Device::Cpu;
        [
            ("train_loss", &self.train_loss),
            ("val_loss", &self.val_loss),
            ("val_accuracy", &self.val_accuracy),
            ("epoch_seconds", &self.epoch_seconds),
        ]
        .into_iter()
        .map(|(k, x)| Ok((format!("{prefix}{k}"), Tensor::new(x.as_slice(), &dev)?)))
        .collect()
    }

    pub(crate) fn from_tensors(
        map: &HashMap<String, Tensor>,
        prefix: &str,
        source: &str,
    ) -> Result<Self> {
        let get = |k: &str| -> Result<Vec<f64>> {
            let key = format!("{prefix}{k}");
            let t = map.get(&key).ok_or_else(|| {
                error(format!("{source} has no `{key}`: it is not a saved history"))
            })?;
            t.to_vec1::<f64>().map_err(|e| {
                error(format!(
                    "`{key}` in {source} is not a list of f64 ({e}): not a saved history"
                ))
            })
        };
        let h = History {
            train_loss: get("train_loss")?,
            val_loss: get("val_loss")?,
            val_accuracy: get("val_accuracy")?,
            epoch_seconds: get("epoch_seconds")?,
            title: String::new(),
        };
        let n = h.train_loss.len();
        if h.epoch_seconds.len() != n
            || h.val_loss.len() > n
            || h.val_accuracy.len() != h.val_loss.len()
        {
            return Err(error(format!(
                "{source} holds {n} training losses, {} validation losses, {} accuracies and {} \
                 epoch times: not a consistent history",
                h.val_loss.len(),
                h.val_accuracy.len(),
                h.epoch_seconds.len()
            )));
        }
        Ok(h)
    }

    /// Shows the loss curves inline (evcxr calls this when a cell's value is a `History`).
    pub fn evcxr_display(&self) {
        match self.plot() {
            Ok(fig) => fig.evcxr_display(),
            Err(e) => println!("cannot plot the history: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::History;

    #[test]
    fn median_epoch_ignores_a_few_slow_epochs() {
        let mut h =
            History { epoch_seconds: vec![10.0, 11.0, 95.0, 10.5, 12.0], ..Default::default() };
        assert_eq!(h.median_epoch_seconds(), 11.0);
        assert_eq!(h.seconds_per_epoch(), 27.7);
        h.epoch_seconds.push(10.2);
        assert_eq!(h.median_epoch_seconds(), (10.5 + 11.0) / 2.0);
        assert_eq!(History::default().median_epoch_seconds(), 0.0);
    }
}
