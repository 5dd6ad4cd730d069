//! Per-epoch checkpoints that let a run survive its process ([`super::FitOptions::checkpoint`]).

use super::History;
use crate::data::DataLoader;
use crate::nn::Model;
use crate::optim::Optimizer;
use crate::{error, Result, Tensor};
use std::collections::HashMap;
use std::path::Path;

/// How a run can survive its process: after every epoch the loop writes `path` (a
/// `.safetensors` file: the weights and buffers, the optimiser's state, the history so far, the
/// data loader's epoch and the dropout generator), replacing it atomically. A run started
/// with an existing `path` loads it and continues with the next epoch, and ends with the same
/// numbers as the run that was never interrupted (same data order, dropout masks and optimiser
/// state). Costs one write of about three times the model's size per epoch (Adam). Delete the
/// file to start over; the caller deletes it once the finished run is saved elsewhere.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Checkpoint<'a> {
    pub(crate) path: &'a Path,
}

const CKPT_MODEL: &str = "model.";
const CKPT_OPTIM: &str = "optimizer.";
const CKPT_HISTORY: &str = "history.";

impl Checkpoint<'_> {
    pub(crate) fn save(
        &self,
        model: &dyn Model,
        optimizer: &dyn Optimizer,
        history: &History,
        loader: &DataLoader,
    ) -> Result<()> {
        let cpu = candle_core::Device::Cpu;
        let mut map: HashMap<String, Tensor> = HashMap::new();
        for (name, t) in model.params().state_dict() {
            map.insert(format!("{CKPT_MODEL}{name}"), t.to_device(&cpu)?);
        }
        map.extend(optimizer.state()?.into_iter().map(|(k, t)| (format!("{CKPT_OPTIM}{k}"), t)));
        map.extend(history.tensors(CKPT_HISTORY)?);
        map.insert("loader_epoch".into(), Tensor::new(&[loader.epoch() as i64], &cpu)?);
        if let Some(rng) = model.dropout_rng() {
            let s = rng.borrow().state().map(|w| w as i64);
            map.insert("dropout_rng".into(), Tensor::new(&s, &cpu)?);
        }
        let tmp = self.path.with_extension("safetensors.partial");
        candle_core::safetensors::save(&map, &tmp)
            .map_err(|e| error(format!("cannot write the checkpoint {}: {e}", tmp.display())))?;
        std::fs::rename(&tmp, self.path).map_err(|e| {
            error(format!("cannot move the checkpoint into {}: {e}", self.path.display()))
        })
    }

    /// Restores everything [`Checkpoint::save`] wrote; returns the history so far.
    pub(crate) fn load(
        &self,
        model: &dyn Model,
        optimizer: &mut dyn Optimizer,
        loader: &DataLoader,
        epochs: usize,
    ) -> Result<History> {
        let source = format!("the checkpoint {}", self.path.display());
        let map =
            candle_core::safetensors::load(self.path, &candle_core::Device::Cpu).map_err(|e| {
                error(format!("{source} cannot be read ({e}); delete it to start the run over"))
            })?;
        let history = History::from_tensors(&map, CKPT_HISTORY, &source)?;
        let done = history.train_loss.len();
        if done > epochs {
            return Err(error(format!(
                "{source} holds {done} epochs, more than the {epochs} asked for: ask for at least \
                 {done}, or delete it to start over"
            )));
        }
        let part = |prefix: &str| -> HashMap<String, Tensor> {
            map.iter()
                .filter_map(|(k, t)| k.strip_prefix(prefix).map(|k| (k.to_string(), t.clone())))
                .collect()
        };
        let scalar = |k: &str| -> Result<Vec<i64>> {
            let t = map.get(k).ok_or_else(|| error(format!("it has no `{k}`")))?;
            t.to_vec1::<i64>().map_err(|e| error(format!("its `{k}` is not a list of i64 ({e})")))
        };
        let mut restore = || -> Result<()> {
            model.params().load_tensors(&part(CKPT_MODEL), &source)?;
            optimizer.load_state(&part(CKPT_OPTIM))?;
            loader.set_epoch(scalar("loader_epoch")?.first().copied().unwrap_or(0) as u64);
            if let Some(rng) = model.dropout_rng() {
                let s = scalar("dropout_rng")?;
                let state: [u64; 4] =
                    std::array::from_fn(|i| s.get(i).copied().unwrap_or(0) as u64);
                *rng.borrow_mut() = crate::rng::Rng::from_state(state)
                    .ok_or_else(|| error("it has no valid dropout generator state"))?;
            }
            let state_finite = optimizer.state()?.iter().try_fold(true, |ok, (_, t)| {
                let v = t.flatten_all()?.to_dtype(candle_core::DType::F64)?.to_vec1::<f64>()?;
                Ok::<bool, crate::Error>(ok && v.iter().all(|x| x.is_finite()))
            })?;
            if !super::params_finite(model)? || !state_finite {
                return Err(error(
                    "its weights or optimiser state are not finite (saved by a run that diverged; \
                     lower the learning rate when you start over)",
                ));
            }
            Ok(())
        };
        restore().map_err(|e| {
            error(format!("{source} cannot be resumed: {e}; delete it to start the run over"))
        })?;
        Ok(history)
    }
}
