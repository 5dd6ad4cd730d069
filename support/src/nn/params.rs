//! A model's parameters ([`Params`]) and how they are created ([`Init`]).
//!
//! PyTorch's default init for `nn.Linear(in, out)` (and `nn.Conv2d`, with fan_in = in * kh * kw)
//! is `kaiming_uniform_(w, a=sqrt(5))`, i.e. `w ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))`, and
//! `b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))`. candle-nn's own init differs (kaiming-normal), and
//! its CPU RNG cannot be seeded, so every parameter here is drawn from [`crate::rng::Rng`].

use crate::rng::Rng;
use crate::{error, Device, Result, Tensor};
use candle_core::Var;
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// The largest tensor id among the parameters and buffers one [`Init`] has created, shared by
/// the layers it built: each layer's forward pass first makes the running copy of candle number
/// its new tensors above every parameter of the model (see [`crate::env::fence_tensor_ids`] for
/// why notebooks need this), so that a training loop written in a notebook cell is safe without
/// any call of its own. One atomic load per layer once the copy is past the mark.
#[derive(Clone, Debug, Default)]
pub(crate) struct Fence(Arc<AtomicUsize>);

impl Fence {
    fn raise(&self, t: &Tensor) {
        self.0.fetch_max(crate::env::tensor_id(t), Ordering::Relaxed);
    }
    /// Makes the next tensors of this copy of candle get ids above the mark.
    pub(crate) fn pass(&self) -> Result<()> {
        crate::env::fence_to(self.0.load(Ordering::Relaxed))
    }
}

/// The named parameters of a model, in definition order (the order of PyTorch's `state_dict`).
#[derive(Clone, Debug, Default)]
pub struct Params {
    vars: Vec<(String, Var)>,
    /// Non-trainable state saved with the model (BatchNorm running statistics),
    /// as PyTorch's buffers.
    buffers: Vec<(String, Var)>,
    /// The ids' mark of the [`Init`] that made them, raised by [`Params::extend`].
    fence: Fence,
}

impl Params {
    /// No parameters (models get theirs from [`Init::finish`]).
    pub fn new() -> Self {
        Params::default()
    }

    /// The parameter or buffer called `name` (its PyTorch `state_dict` key, e.g. `"0.weight"` or
    /// `"conv1.bias"`), sharing storage with the model; the error lists the names there are.
    pub fn get(&self, name: &str) -> Result<Tensor> {
        match self.vars.iter().chain(&self.buffers).find(|(n, _)| n == name) {
            Some((_, v)) => Ok(v.as_tensor().clone()),
            None => {
                let names: Vec<&str> =
                    self.vars.iter().chain(&self.buffers).map(|(n, _)| n.as_str()).collect();
                Err(error(format!("no parameter `{name}`; the model has {}", names.join(", "))))
            }
        }
    }

    /// Adds a parameter with the given initial value.
    pub(crate) fn push(&mut self, name: impl Into<String>, value: Tensor) -> Result<Tensor> {
        let var = Var::from_tensor(&value)?;
        let t = var.as_tensor().clone();
        self.vars.push((name.into(), var));
        Ok(t)
    }

    /// Adds a buffer: state that is saved and loaded but not trained nor counted
    /// (PyTorch's `register_buffer`, e.g. BatchNorm's `running_mean`).
    pub(crate) fn buffer(&mut self, name: impl Into<String>, value: Tensor) -> Result<Var> {
        let var = Var::from_tensor(&value)?;
        self.buffers.push((name.into(), var.clone()));
        Ok(var)
    }

    /// `(name, buffer)` pairs in definition order.
    pub fn buffers(&self) -> &[(String, Var)] {
        &self.buffers
    }

    /// All parameters (for an optimiser).
    pub fn vars(&self) -> Vec<Var> {
        self.vars.iter().map(|(_, v)| v.clone()).collect()
    }

    /// `(name, parameter)` pairs in definition order.
    pub fn named(&self) -> &[(String, Var)] {
        &self.vars
    }

    /// The parameters and buffers whose names satisfy `keep`, sharing their storage with `self`
    /// (training the selection trains these tensors of the model).
    pub fn select(&self, keep: impl Fn(&str) -> bool) -> Params {
        let pick = |v: &[(String, Var)]| v.iter().filter(|(n, _)| keep(n)).cloned().collect();
        Params { vars: pick(&self.vars), buffers: pick(&self.buffers), fence: self.fence.clone() }
    }

    /// Adds every parameter and buffer of `other` (sharing storage) under `prefix` + its name.
    pub fn extend(&mut self, prefix: &str, other: &Params) {
        self.vars.extend(other.vars.iter().map(|(n, v)| (format!("{prefix}{n}"), v.clone())));
        self.buffers.extend(other.buffers.iter().map(|(n, v)| (format!("{prefix}{n}"), v.clone())));
        self.fence.0.fetch_max(other.fence.0.load(Ordering::Relaxed), Ordering::Relaxed);
    }

    /// Makes the running copy of candle number its next tensors above every parameter and
    /// buffer here: what the library's models do first in their forward pass, so that a
    /// training loop written in a notebook cell needs no call of its own (see [`Fence`]).
    pub(crate) fn fence(&self) -> Result<()> {
        self.fence.pass()
    }

    /// Sets every parameter and buffer to the value of the one with the same name in `other`
    /// (copying the values, not sharing them); `source` names `other` in error messages.
    pub fn copy_from(&self, other: &Params, source: &str) -> Result<()> {
        // `Var::set` copies the values into this model's own storage.
        self.load_tensors(&other.state_dict(), source)
    }

    /// Every parameter and buffer by its PyTorch `state_dict` name (the tensors share storage
    /// with the model).
    pub fn state_dict(&self) -> HashMap<String, Tensor> {
        self.vars
            .iter()
            .chain(&self.buffers)
            .map(|(n, v)| (n.clone(), v.as_tensor().clone()))
            .collect()
    }

    /// Total number of scalar parameters (PyTorch: `sum(p.numel() for p in model.parameters())`).
    pub fn count(&self) -> usize {
        self.vars.iter().map(|(_, v)| v.elem_count()).sum()
    }

    /// Writes the parameters to a `.safetensors` file under their PyTorch `state_dict` names,
    /// creating the parent folder if needed.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| error(format!("cannot create {}: {e}", dir.display())))?;
        }
        candle_core::safetensors::save(&self.state_dict(), path)
    }

    /// Loads every parameter and buffer from a checkpoint: a `.safetensors` file written by
    /// [`Params::save`] (or by `safetensors.torch.save_file(model.state_dict(), path)`), or a
    /// PyTorch `.pth` (zip or legacy format, see [`crate::weights`]). Keys are the PyTorch
    /// `state_dict` names; each must be present with the same shape and a float dtype (f16/bf16/f64
    /// are converted); extra keys (e.g. `num_batches_tracked`) are ignored. Nothing is changed
    /// unless every key checks out.
    pub fn load(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        if !path.exists() {
            return Err(error(format!(
                "weights file {} does not exist; train and save the model first, or fix the path",
                path.display()
            )));
        }
        let map = crate::weights::read_state_dict(path)?;
        self.load_tensors(&map, &path.display().to_string())
    }

    /// [`Params::load`] from tensors already read; `source` names them in error messages.
    pub fn load_tensors(&self, map: &HashMap<String, Tensor>, source: &str) -> Result<()> {
        let mut values = Vec::with_capacity(self.vars.len() + self.buffers.len());
        for (name, var) in self.vars.iter().chain(&self.buffers) {
            let t = map.get(name).ok_or_else(|| {
                error(format!(
                    "{source} has no tensor `{name}`: it was saved from a different model (it \
                     holds {} tensors); load the weights saved from this architecture",
                    map.len()
                ))
            })?;
            if t.dims() != var.dims() {
                return Err(error(format!(
                    "`{name}` in {source} has shape {:?}, the model expects {:?}: the file \
                     belongs to a different architecture; load the weights saved from this one",
                    t.dims(),
                    var.dims()
                )));
            }
            if !t.dtype().is_float() {
                return Err(error(format!(
                    "`{name}` in {source} has dtype {:?}, a float type was expected: the file is \
                     not this model's weights; load the right file or save them as floats",
                    t.dtype()
                )));
            }
            let value = t.to_dtype(var.dtype()).and_then(|t| t.to_device(var.device()));
            values.push(value.map_err(|e| error(format!("`{name}` in {source}: {e}")))?);
        }
        for ((_, var), value) in self.vars.iter().chain(&self.buffers).zip(values) {
            var.set(&value)?;
        }
        Ok(())
    }
}

/// Creates the parameters of one model: each registered under its PyTorch `state_dict` name,
/// drawn with PyTorch's default init from one seeded stream (so the same seed gives the same
/// model), on one device. The layer constructors ([`super::Linear::new`], ...) take it;
/// [`Init::finish`] hands over the parameters.
///
/// ```no_run
/// use support::nn::{Conv2d, Conv2dConfig, Init, Linear};
/// let mut init = Init::new(0, &support::Device::Cpu);
/// let cfg = Conv2dConfig { padding: 1, ..Default::default() };
/// let conv = Conv2d::new(&mut init, "conv1", 3, 16, (3, 3), cfg)?;
/// let fc = Linear::new(&mut init, "fc", 16 * 32 * 32, 10)?;
/// let params = init.finish();
/// # Ok::<(), support::Error>(())
/// ```
pub struct Init {
    params: Params,
    rng: Rng,
    device: Device,
    fence: Fence,
}

impl Init {
    /// Parameters drawn from `seed`, on `device`.
    pub fn new(seed: u64, device: &Device) -> Self {
        crate::env::tune_allocator();
        Init {
            params: Params::new(),
            rng: Rng::new(seed),
            device: device.clone(),
            fence: Fence::default(),
        }
    }

    /// The device the parameters go to.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Adds a parameter `name` of `shape` drawn `U(-bound, bound)`.
    pub fn uniform(&mut self, name: &str, shape: &[usize], bound: f32) -> Result<Tensor> {
        let n = shape.iter().product();
        let t = Tensor::from_vec(self.rng.uniform_vec(n, -bound, bound), shape, &self.device)?;
        let t = self.params.push(name, t)?;
        self.fence.raise(&t);
        Ok(t)
    }

    /// Adds a parameter `name` filled with `value` (BatchNorm's weight 1 and bias 0).
    pub fn constant(&mut self, name: &str, shape: &[usize], value: f64) -> Result<Tensor> {
        let t = (Tensor::ones(shape, candle_core::DType::F32, &self.device)? * value)?;
        let t = self.params.push(name, t)?;
        self.fence.raise(&t);
        Ok(t)
    }

    /// Adds a buffer `name` filled with `value`: state that is saved and loaded but neither
    /// trained nor counted (PyTorch's `register_buffer`, e.g. BatchNorm's `running_mean`).
    pub fn buffer(&mut self, name: &str, shape: &[usize], value: f64) -> Result<Var> {
        let t = (Tensor::ones(shape, candle_core::DType::F32, &self.device)? * value)?;
        let v = self.params.buffer(name, t)?;
        self.fence.raise(v.as_tensor());
        Ok(v)
    }

    /// The fence its layers share (see [`Fence`]).
    pub(crate) fn fence(&self) -> Fence {
        self.fence.clone()
    }

    /// The parameters created so far, in creation order.
    pub fn finish(self) -> Params {
        Params { fence: self.fence, ..self.params }
    }
}

#[cfg(test)]
mod fence_tests {
    use super::*;
    use crate::env::tensor_id;
    use crate::nn::{BatchNorm2d, Linear};

    /// Every layer of a model carries the same mark: the largest id among all the model's
    /// parameters and buffers, including those created after the layer itself.
    #[test]
    fn layers_share_the_mark_of_their_whole_model() {
        let mut init = Init::new(0, &Device::Cpu);
        let first = Linear::new(&mut init, "a", 3, 4).unwrap();
        let bn = BatchNorm2d::new(&mut init, "bn", 4, 1e-5).unwrap();
        let last = Linear::new(&mut init, "b", 4, 2).unwrap();
        let params = init.finish();
        let all = params.vars().into_iter().chain(params.buffers().iter().map(|(_, v)| v.clone()));
        let max = all.map(|v| tensor_id(v.as_tensor())).max().unwrap();
        assert_eq!(tensor_id(last.bias.as_ref().unwrap()), max);
        for mark in [&first.fence, &bn.fence, &last.fence, &params.fence] {
            assert_eq!(mark.0.load(Ordering::Relaxed), max);
        }
    }

    /// Passing a mark makes the next tensor's id larger than it.
    #[test]
    fn passing_a_mark_moves_the_counter_past_it() {
        let mark = tensor_id(&Tensor::new(0f32, &Device::Cpu).unwrap()) + 100_000;
        let fence = Fence::default();
        fence.0.store(mark, Ordering::Relaxed);
        fence.pass().unwrap();
        let after = tensor_id(&Tensor::new(0f32, &Device::Cpu).unwrap());
        assert!(after > mark, "{after} <= {mark}");
    }
}
