//! Optimisers exactly as `torch.optim` defines them.
//!
//! - [`Sgd`]: `torch.optim.SGD(params, lr, momentum=0, dampening=0, weight_decay=0,
//! nesterov=False)`.
//! - [`Adam`]: `torch.optim.Adam(params, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0)` with
//!   *coupled* L2 weight decay (`g += weight_decay * p`), not AdamW's decoupled decay.
//!
//! candle-nn has SGD without momentum and AdamW only. On the CPU each parameter is updated in
//! place in one pass (a candle in-place op, no temporary tensors); on other devices the same
//! formulas run as tensor ops.

use crate::kernels;
use crate::{error, Result, Tensor};
use candle_core::backprop::GradStore;
use candle_core::Var;
use std::collections::HashMap;

/// What [`crate::train::fit`] needs from an optimiser.
pub trait Optimizer {
    /// Applies one update from the gradients of the last `backward()`.
    fn step(&mut self, grads: &GradStore) -> Result<()>;
    /// The current learning rate.
    fn learning_rate(&self) -> f64;
    /// Changes the learning rate (for schedules).
    fn set_learning_rate(&mut self, lr: f64);
    /// Changes the momentum (SGD's `momentum`, Adam's `beta1`), for schedules that cycle it.
    fn set_momentum(&mut self, momentum: f64);
    /// The running state (momentum buffers, Adam's moments and step count) as named CPU tensors,
    /// for a checkpoint; the hyper-parameters are not included (the caller sets them again).
    fn state(&self) -> Result<Vec<(String, Tensor)>>;
    /// Restores what [`Optimizer::state`] returned, for the same parameters in the same order.
    fn load_state(&mut self, state: &HashMap<String, Tensor>) -> Result<()>;
}

/// Per-parameter state: a CPU buffer (fused path) or a tensor (device path).
enum Slot {
    Empty,
    Cpu(Vec<f32>),
    Dev(Tensor),
}

impl Slot {
    /// The slot as a CPU tensor shaped like `var` (`None` while empty).
    fn to_tensor(&self, var: &Var) -> Result<Option<Tensor>> {
        match self {
            Slot::Empty => Ok(None),
            Slot::Cpu(v) => {
                Ok(Some(Tensor::from_slice(v, var.shape(), &candle_core::Device::Cpu)?))
            }
            Slot::Dev(t) => Ok(Some(t.to_device(&candle_core::Device::Cpu)?)),
        }
    }

    /// The slot holding `t` (saved by [`Slot::to_tensor`]) for `var`, on the side `fused` picks.
    fn from_tensor(t: &Tensor, var: &Var, fused: bool, key: &str) -> Result<Slot> {
        if t.dims() != var.dims() {
            return Err(error(format!(
                "optimiser state `{key}` has shape {:?}, its parameter {:?}: the checkpoint \
                 belongs to a different model",
                t.dims(),
                var.dims()
            )));
        }
        let t = t.to_dtype(var.dtype())?;
        Ok(if use_fused(var, fused) {
            Slot::Cpu(t.flatten_all()?.to_vec1::<f32>()?)
        } else {
            Slot::Dev(t.to_device(var.device())?)
        })
    }
}

/// `slots[i]` saved as `{prefix}.{i}` for every non-empty slot.
fn save_slots(
    out: &mut Vec<(String, Tensor)>,
    prefix: &str,
    slots: &[Slot],
    vars: &[Var],
) -> Result<()> {
    for (i, (slot, var)) in slots.iter().zip(vars).enumerate() {
        if let Some(t) = slot.to_tensor(var)? {
            out.push((format!("{prefix}.{i}"), t));
        }
    }
    Ok(())
}

/// The slots [`save_slots`] wrote; a missing key is an empty slot.
fn load_slots(
    state: &HashMap<String, Tensor>,
    prefix: &str,
    vars: &[Var],
    fused: bool,
) -> Result<Vec<Slot>> {
    let n = state
        .keys()
        .filter(|k| k.strip_prefix(prefix).and_then(|r| r.strip_prefix('.')).is_some())
        .count();
    let slots = vars
        .iter()
        .enumerate()
        .map(|(i, var)| {
            let key = format!("{prefix}.{i}");
            state.get(&key).map_or(Ok(Slot::Empty), |t| Slot::from_tensor(t, var, fused, &key))
        })
        .collect::<Result<Vec<_>>>()?;
    let loaded = slots.iter().filter(|s| !matches!(s, Slot::Empty)).count();
    if loaded != n {
        let mut stray: Vec<&str> = state
            .keys()
            .filter(|k| {
                k.strip_prefix(prefix)
                    .and_then(|r| r.strip_prefix('.'))
                    .is_some_and(|i| i.parse::<usize>().map_or(true, |i| i >= vars.len()))
            })
            .map(String::as_str)
            .collect();
        stray.sort();
        return Err(error(format!(
            "the optimiser state has `{prefix}` tensors for parameters this optimiser does not \
             have ({}; it has parameters 0 to {}): it belongs to a different model",
            stray.join(", "),
            vars.len().saturating_sub(1)
        )));
    }
    Ok(slots)
}

fn grad_of<'a>(grads: &'a GradStore, var: &Var) -> Option<&'a Tensor> {
    grads.get(var.as_tensor())
}

fn use_fused(var: &Var, allowed: bool) -> bool {
    allowed && kernels::applies(&[var.as_tensor()])
}

/// `torch.optim.SGD`: plain by default; `.momentum(m)`, `.nesterov(true)`, `.dampening(d)`,
/// `.weight_decay(wd)` as in PyTorch.
pub struct Sgd {
    vars: Vec<Var>,
    bufs: Vec<Slot>,
    /// Learning rate.
    pub lr: f64,
    /// Momentum factor (0: plain SGD).
    pub momentum: f64,
    /// Dampening of the momentum.
    pub dampening: f64,
    /// L2 penalty added to the gradient: `g += weight_decay * p`.
    pub weight_decay: f64,
    /// Nesterov momentum.
    pub nesterov: bool,
    fused: bool,
}

impl Sgd {
    /// Plain SGD with learning rate `lr` over `vars` (e.g. `model.params().vars()`).
    pub fn new(vars: Vec<Var>, lr: f64) -> Result<Self> {
        if lr.is_nan() || lr <= 0.0 {
            return Err(error(format!("SGD learning rate must be positive, got {lr}")));
        }
        let bufs = vars.iter().map(|_| Slot::Empty).collect();
        Ok(Sgd {
            vars,
            bufs,
            lr,
            momentum: 0.0,
            dampening: 0.0,
            weight_decay: 0.0,
            nesterov: false,
            fused: true,
        })
    }
    /// With momentum `m`.
    pub fn momentum(mut self, m: f64) -> Self {
        self.momentum = m;
        self
    }
    /// With dampening `d`.
    pub fn dampening(mut self, d: f64) -> Self {
        self.dampening = d;
        self
    }
    /// With Nesterov momentum on or off.
    pub fn nesterov(mut self, on: bool) -> Self {
        self.nesterov = on;
        self
    }
    /// With L2 weight decay `wd` (added to the gradient, as PyTorch).
    pub fn weight_decay(mut self, wd: f64) -> Self {
        self.weight_decay = wd;
        self
    }
    /// `false` forces the tensor-op path that non-CPU devices use (for testing it on the CPU).
    #[doc(hidden)]
    pub fn fused(mut self, on: bool) -> Self {
        self.fused = on;
        self
    }
}

impl Optimizer for Sgd {
    fn step(&mut self, grads: &GradStore) -> Result<()> {
        if self.nesterov && (self.momentum <= 0.0 || self.dampening != 0.0) {
            return Err(error(
                "Nesterov momentum requires a momentum > 0 and zero dampening (as in PyTorch)",
            ));
        }
        let (lr, mom, damp, wd, nesterov) = (
            self.lr as f32,
            self.momentum as f32,
            self.dampening as f32,
            self.weight_decay as f32,
            self.nesterov,
        );
        for (var, slot) in self.vars.iter().zip(self.bufs.iter_mut()) {
            let Some(g) = grad_of(grads, var) else { continue };
            if use_fused(var, self.fused) {
                let first = matches!(slot, Slot::Empty);
                if first && mom != 0.0 {
                    *slot = Slot::Cpu(vec![0.0; var.elem_count()]);
                }
                let mut buf = match slot {
                    Slot::Cpu(b) => Some(b),
                    _ => None,
                };
                kernels::update::update(var, g, |p, g| match buf.as_deref_mut() {
                    None => p.iter_mut().zip(g).for_each(|(p, &g)| *p -= lr * (g + wd * *p)),
                    Some(buf) => {
                        for ((p, &g), b) in p.iter_mut().zip(g).zip(buf.iter_mut()) {
                            let d = g + wd * *p;
                            *b = if first { d } else { mom * *b + (1.0 - damp) * d };
                            *p -= lr * if nesterov { d + mom * *b } else { *b };
                        }
                    }
                })?;
            } else {
                let p = var.as_tensor();
                let mut d = if wd != 0.0 { (g + (p * wd as f64)?)? } else { g.clone() };
                if mom != 0.0 {
                    let b = match slot {
                        Slot::Dev(b) => {
                            b.affine(mom as f64, 0.0)?.add(&d.affine((1.0 - damp) as f64, 0.0)?)?
                        }
                        _ => d.clone(),
                    };
                    d = if nesterov { d.add(&b.affine(mom as f64, 0.0)?)? } else { b.clone() };
                    *slot = Slot::Dev(b);
                }
                var.set(&(p - (d * lr as f64)?)?)?;
            }
        }
        Ok(())
    }
    fn learning_rate(&self) -> f64 {
        self.lr
    }
    fn set_learning_rate(&mut self, lr: f64) {
        self.lr = lr;
    }
    fn set_momentum(&mut self, momentum: f64) {
        self.momentum = momentum;
    }
    fn state(&self) -> Result<Vec<(String, Tensor)>> {
        let mut out = Vec::new();
        save_slots(&mut out, "momentum_buffer", &self.bufs, &self.vars)?;
        Ok(out)
    }
    fn load_state(&mut self, state: &HashMap<String, Tensor>) -> Result<()> {
        self.bufs = load_slots(state, "momentum_buffer", &self.vars, self.fused)?;
        Ok(())
    }
}

/// `torch.optim.Adam` (coupled L2 weight decay; AMSGrad off).
pub struct Adam {
    vars: Vec<Var>,
    m: Vec<Slot>,
    v: Vec<Slot>,
    t: i32,
    /// Learning rate.
    pub lr: f64,
    /// Decay of the running mean of the gradient.
    pub beta1: f64,
    /// Decay of the running mean of its square.
    pub beta2: f64,
    /// Added to the denominator for stability.
    pub eps: f64,
    /// Coupled L2 penalty added to the gradient: `g += weight_decay * p`.
    pub weight_decay: f64,
    fused: bool,
}

impl Adam {
    /// Adam with learning rate `lr` and PyTorch's defaults: betas (0.9, 0.999), eps 1e-8, no decay.
    pub fn new(vars: Vec<Var>, lr: f64) -> Result<Self> {
        if lr.is_nan() || lr <= 0.0 {
            return Err(error(format!("Adam learning rate must be positive, got {lr}")));
        }
        let empty = || vars.iter().map(|_| Slot::Empty).collect();
        Ok(Adam {
            m: empty(),
            v: empty(),
            vars,
            t: 0,
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            fused: true,
        })
    }
    /// With betas `(beta1, beta2)`.
    pub fn betas(mut self, beta1: f64, beta2: f64) -> Self {
        self.beta1 = beta1;
        self.beta2 = beta2;
        self
    }
    /// With `eps`.
    pub fn eps(mut self, eps: f64) -> Self {
        self.eps = eps;
        self
    }
    /// Coupled L2 decay, as `torch.optim.Adam(..., weight_decay=wd)`: `g += wd * p`.
    pub fn weight_decay(mut self, wd: f64) -> Self {
        self.weight_decay = wd;
        self
    }
    /// `false` forces the tensor-op path that non-CPU devices use (for testing it on the CPU).
    #[doc(hidden)]
    pub fn fused(mut self, on: bool) -> Self {
        self.fused = on;
        self
    }
}

impl Optimizer for Adam {
    fn step(&mut self, grads: &GradStore) -> Result<()> {
        self.t += 1;
        let (b1, b2) = (self.beta1, self.beta2);
        let bc1 = 1.0 - b1.powi(self.t);
        let bc2 = 1.0 - b2.powi(self.t);
        let step_size = (self.lr / bc1) as f32;
        let sqrt_bc2 = bc2.sqrt() as f32;
        let (b1f, b2f, eps, wd) = (b1 as f32, b2 as f32, self.eps as f32, self.weight_decay as f32);
        for ((var, m), v) in self.vars.iter().zip(self.m.iter_mut()).zip(self.v.iter_mut()) {
            let Some(g) = grad_of(grads, var) else { continue };
            if use_fused(var, self.fused) {
                if matches!(m, Slot::Empty) {
                    *m = Slot::Cpu(vec![0.0; var.elem_count()]);
                    *v = Slot::Cpu(vec![0.0; var.elem_count()]);
                }
                let (Slot::Cpu(m), Slot::Cpu(v)) = (m, v) else {
                    unreachable!("fused state is on the CPU")
                };
                kernels::update::update(var, g, |p, g| {
                    for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut())
                    {
                        let g = g + wd * *p;
                        *m = b1f * *m + (1.0 - b1f) * g;
                        *v = b2f * *v + (1.0 - b2f) * g * g;
                        *p -= step_size * *m / (v.sqrt() / sqrt_bc2 + eps);
                    }
                })?;
            } else {
                let p = var.as_tensor();
                let g = if wd != 0.0 { (g + (p * wd as f64)?)? } else { g.clone() };
                let (m_prev, v_prev) = match (&*m, &*v) {
                    (Slot::Dev(m), Slot::Dev(v)) => (m.clone(), v.clone()),
                    _ => (g.zeros_like()?, g.zeros_like()?),
                };
                let m_new = ((m_prev * b1)? + (&g * (1.0 - b1))?)?;
                let v_new = ((v_prev * b2)? + (g.sqr()? * (1.0 - b2))?)?;
                let denom = ((v_new.sqrt()? / sqrt_bc2 as f64)? + eps as f64)?;
                var.set(&(p - ((&m_new / denom)? * step_size as f64)?)?)?;
                *m = Slot::Dev(m_new);
                *v = Slot::Dev(v_new);
            }
        }
        Ok(())
    }
    fn learning_rate(&self) -> f64 {
        self.lr
    }
    fn set_learning_rate(&mut self, lr: f64) {
        self.lr = lr;
    }
    fn set_momentum(&mut self, momentum: f64) {
        self.beta1 = momentum;
    }
    fn state(&self) -> Result<Vec<(String, Tensor)>> {
        let mut out =
            vec![("step".to_string(), Tensor::new(&[self.t as i64], &candle_core::Device::Cpu)?)];
        save_slots(&mut out, "exp_avg", &self.m, &self.vars)?;
        save_slots(&mut out, "exp_avg_sq", &self.v, &self.vars)?;
        Ok(out)
    }
    fn load_state(&mut self, state: &HashMap<String, Tensor>) -> Result<()> {
        let step = state.get("step").ok_or_else(|| {
            error("the checkpoint has no Adam `step`: it was saved with another optimiser")
        })?;
        let t = step
            .to_vec1::<i64>()
            .map_err(|e| error(format!("the Adam `step` in the checkpoint is not an i64 ({e})")))?
            .first()
            .copied()
            .unwrap_or(0);
        let (m, v) = (
            load_slots(state, "exp_avg", &self.vars, self.fused)?,
            load_slots(state, "exp_avg_sq", &self.vars, self.fused)?,
        );
        self.t = i32::try_from(t)
            .map_err(|_| error(format!("Adam step {t} in the checkpoint is out of range")))?;
        (self.m, self.v) = (m, v);
        Ok(())
    }
}

/// `torch.optim.lr_scheduler.OneCycleLR` with its defaults (two phases, cosine annealing,
/// momentum cycled between `max_momentum` and `base_momentum`): the learning rate rises from
/// `max_lr / div_factor` to `max_lr` over the first `pct_start` of the steps while the momentum
/// falls, then anneals to `max_lr / div_factor / final_div_factor` while the momentum rises back.
#[derive(Clone, Copy, Debug)]
pub struct OneCycle {
    /// Peak learning rate.
    pub max_lr: f64,
    /// Optimiser steps the schedule spans.
    pub total_steps: usize,
    /// Fraction of the steps spent rising to `max_lr`.
    pub pct_start: f64,
    /// `max_lr / div_factor` is the starting rate.
    pub div_factor: f64,
    /// The final rate is the starting rate / `final_div_factor`.
    pub final_div_factor: f64,
    /// Momentum at the peak of the learning rate.
    pub base_momentum: f64,
    /// Momentum at the start and the end.
    pub max_momentum: f64,
}

impl OneCycle {
    /// PyTorch's defaults: `pct_start` 0.3, `div_factor` 25, `final_div_factor` 1e4, momentum 0.85
    /// to 0.95.
    pub fn new(max_lr: f64, total_steps: usize) -> Self {
        OneCycle {
            max_lr,
            total_steps,
            pct_start: 0.3,
            div_factor: 25.0,
            final_div_factor: 1e4,
            base_momentum: 0.85,
            max_momentum: 0.95,
        }
    }

    /// (learning rate, momentum) for optimiser step `step` (0-based).
    pub fn at(&self, step: usize) -> (f64, f64) {
        let initial = self.max_lr / self.div_factor;
        let min = initial / self.final_div_factor;
        let up_end = self.pct_start * self.total_steps as f64 - 1.0;
        let down_end = self.total_steps as f64 - 1.0;
        let cos = |start: f64, end: f64, pct: f64| {
            end + (start - end) / 2.0 * ((std::f64::consts::PI * pct).cos() + 1.0)
        };
        let s = step as f64;
        if s <= up_end {
            let pct = s / up_end;
            (cos(initial, self.max_lr, pct), cos(self.max_momentum, self.base_momentum, pct))
        } else {
            let pct = (s - up_end) / (down_end - up_end);
            (cos(self.max_lr, min, pct), cos(self.base_momentum, self.max_momentum, pct))
        }
    }

    /// Sets `optimizer`'s learning rate and momentum for step `step`.
    pub fn apply(&self, optimizer: &mut dyn Optimizer, step: usize) {
        let (lr, m) = self.at(step);
        optimizer.set_learning_rate(lr);
        optimizer.set_momentum(m);
    }
}
