//! PyTorch's `print(model)` text: one line per leaf layer (`Conv2d(3, 64, kernel_size=...)`),
//! containers as `Name(` ... `)` with their children as `(name): child`, indented two spaces per
//! level, as `torch.nn.Module.__repr__` writes them. [`Sequential`](super::Sequential) and the
//! torchvision models build a [`Module`] tree and print it.

use super::{BatchNorm2d, Conv2d, Linear, Pool2d};
use std::fmt;

/// One module of a printed network: a leaf's whole text, or a container's class name with its
/// named children.
pub(crate) struct Module {
    head: String,
    children: Vec<(String, Module)>,
}

impl Module {
    /// A leaf: its text as PyTorch prints it (`ReLU(inplace=True)`).
    pub(crate) fn leaf(text: impl Into<String>) -> Self {
        Module { head: text.into(), children: Vec::new() }
    }
    /// A container (`Sequential`, `BasicBlock`, ...) with no children yet.
    pub(crate) fn node(class: &str) -> Self {
        Module::leaf(class)
    }
    /// Adds a named child (`conv1`, or `0` inside a `Sequential`).
    pub(crate) fn child(mut self, name: impl Into<String>, m: Module) -> Self {
        self.children.push((name.into(), m));
        self
    }
    /// A container whose children are numbered from 0, as in `nn.Sequential`.
    pub(crate) fn sequential(class: &str, items: impl IntoIterator<Item = Module>) -> Self {
        let mut m = Module::node(class);
        for (i, item) in items.into_iter().enumerate() {
            m = m.child(i.to_string(), item);
        }
        m
    }
}

impl fmt::Display for Module {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.children.is_empty() {
            // A container without children prints as `Name()`, a leaf as its own text.
            return if self.head.ends_with(')') {
                f.write_str(&self.head)
            } else {
                write!(f, "{}()", self.head)
            };
        }
        writeln!(f, "{}(", self.head)?;
        for (name, child) in &self.children {
            let text = child.to_string().replace('\n', "\n  ");
            writeln!(f, "  ({name}): {text}")?;
        }
        f.write_str(")")
    }
}

/// A float as Python's `repr` writes it: `0.5`, `0.001`, `1e-05`, `0.0`.
pub(crate) fn py_float(x: f64) -> String {
    let a = x.abs();
    if a != 0.0 && !(1e-4..1e16).contains(&a) {
        let s = format!("{x:e}");
        let (mantissa, exp) = s.split_once('e').expect("`{:e}` writes an exponent");
        let exp: i32 = exp.parse().expect("`{:e}` writes an integer exponent");
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else if x.fract() == 0.0 {
        format!("{x:.1}")
    } else {
        format!("{x}")
    }
}

fn yes(b: bool) -> &'static str {
    if b {
        "True"
    } else {
        "False"
    }
}

/// `Conv2d(3, 64, kernel_size=(11, 11), stride=(4, 4), padding=(2, 2))`: PyTorch leaves out a
/// zero padding and a present bias.
pub(crate) fn conv(c: &Conv2d) -> Module {
    let (t, b, l, r) = c.padding;
    let pad = match (t == b && l == r, t + b + l + r) {
        (_, 0) => String::new(),
        (true, _) => format!(", padding=({t}, {l})"),
        (false, _) => format!(", padding=({t}, {b}, {l}, {r})"),
    };
    Module::leaf(format!(
        "Conv2d({}, {}, kernel_size=({}, {}), stride=({s}, {s}){pad}{})",
        c.in_channels,
        c.out_channels,
        c.kernel.0,
        c.kernel.1,
        if c.bias.is_some() { "" } else { ", bias=False" },
        s = c.stride,
    ))
}

/// `Linear(in_features=9216, out_features=4096, bias=True)`.
pub(crate) fn linear(l: &Linear) -> Module {
    Module::leaf(format!(
        "Linear(in_features={}, out_features={}, bias={})",
        l.in_features,
        l.out_features,
        yes(l.bias.is_some())
    ))
}

/// `BatchNorm2d(64, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)`, as the
/// originals' PyTorch (1.x) printed it; PyTorch 2.x adds `bias=True` after `affine`.
pub(crate) fn batch_norm(b: &BatchNorm2d) -> Module {
    Module::leaf(format!(
        "BatchNorm2d({}, eps={}, momentum={}, affine=True, track_running_stats=True)",
        b.weight.dims()[0],
        py_float(b.eps),
        py_float(b.momentum)
    ))
}

/// `MaxPool2d(kernel_size=3, stride=2, padding=0, dilation=1, ceil_mode=False)`.
pub(crate) fn max_pool(p: Pool2d) -> Module {
    Module::leaf(format!("MaxPool2d({p}, dilation=1, ceil_mode=False)"))
}

/// `Dropout(p=0.5, inplace=False)`.
pub(crate) fn dropout(p: f32) -> Module {
    // Through the shortest decimal text of the f32, so 0.2 prints as 0.2, not 0.20000000298...
    let p: f64 = p.to_string().parse().unwrap_or(p as f64);
    Module::leaf(format!("Dropout(p={}, inplace=False)", py_float(p)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_floats() {
        let cases = [(1e-5, "1e-05"), (1e-3, "0.001"), (0.1, "0.1"), (0.5, "0.5"), (0.0, "0.0")];
        for (x, want) in cases {
            assert_eq!(py_float(x), want);
        }
        assert_eq!(py_float(2.5e-7), "2.5e-07");
        assert_eq!(py_float(1.0), "1.0");
    }

    #[test]
    fn nested_containers_indent_two_spaces_per_level() {
        let m = Module::node("Net")
            .child("body", Module::sequential("Sequential", [Module::leaf("ReLU()")]))
            .child("empty", Module::node("Identity"));
        assert_eq!(
            m.to_string(),
            "Net(\n  (body): Sequential(\n    (0): ReLU()\n  )\n  (empty): Identity()\n)"
        );
    }
}
