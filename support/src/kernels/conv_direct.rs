//! Direct convolution for the stride-1, square-kernel layers of the CIFAR-sized nets: forward
//! pass, weight gradient and input gradient without an im2col matrix, in AVX2 + FMA.
//! [`super::conv`] runs a layer's forward pass and input gradient here when [`applies`] says so,
//! and its weight gradient too when [`weight_grad_applies`] (few channels); else im2col + gemm.
//!
//! A layer like CIFAR LeNet-5's first (3 -> 6 channels, 5x5) hands gemm a 75-row im2col matrix
//! per image, 25 times the image, written and then read back for only 6 multiply-adds per
//! element; copying it costs more than the arithmetic (im2col and its copies were a quarter of
//! that net's training step). Here the outputs are computed 8 pixels at a time in registers,
//! the way oneDNN treats small channel counts:
//!
//! - forward: `out[o][y][x] = b[o] + sum_{c,i,j} w[o][c][i][j] * xpad[c][y+i][x+j]`: for a block
//!   of up to 8 output channels, per kernel tap one load of 8 neighbouring input pixels and one
//!   broadcast weight per channel, accumulated in one register per channel;
//! - weight gradient: `dW[o][c][i][j] = sum_{y,x} dY[o][y][x] * xpad[c][y+i][x+j]`: per 8 pixels,
//!   the gradient of `B` channels and the `KW` shifted inputs of one kernel row feed `B * KW`
//!   accumulators (8-lane partial sums over a group of images that fits the L2 cache, reduced
//!   once per group);
//! - input gradient: the forward kernel on the output gradient padded by `K-1-pad`, with the
//!   weights flipped and transposed (`w'[c][o][i][j] = w[o][c][KH-1-i][KW-1-j]`).
//!
//! Images are spread over the cores (rayon). Measured on the 2-core reference machine, whole
//! training steps, two rounds alternating with im2col + gemm: CIFAR LeNet-5 -16 to -36%, VGG1 -6 to
//! -10%, VGG3 -10 to -18%, the residual ResNet -11 to -15%; Inception and the MNIST CNNs within the
//! run-to-run noise (+-10%). Then the forward pass and input gradient of the wider layers too (up
//! to 128 -> 64 channels), with the weight gradient kept in registers (3 channels per 3x3 block,
//! not 4: 17 registers spilled) and summed over image groups: three alternating rounds of the bench
//! binary (2 threads, training paused), ResNet 0 to -13%, Inception -9 to -17%. Only on x86-64 CPUs
//! with AVX2 and FMA ([`available`]); elsewhere gemm does everything.

use std::arch::x86_64::*;

const LANES: usize = 8;
/// Most output channels per forward block: 8 accumulators + the input + a broadcast register.
const MAX_BLOCK: usize = 8;

/// A stride-1 convolution's shape: input `(c, h, w)`, `o` filters of `k x k`, zero padding `pad`
/// on every side.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Shape {
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub o: usize,
    pub k: usize,
    pub pad: usize,
}

impl Shape {
    fn oh(&self) -> usize {
        self.h + 2 * self.pad + 1 - self.k
    }
    fn ow(&self) -> usize {
        self.w + 2 * self.pad + 1 - self.k
    }
    /// 8-pixel tiles per output row, and the row length they cover.
    fn tiles(&self) -> usize {
        self.ow().div_ceil(LANES)
    }
    fn tw(&self) -> usize {
        self.tiles() * LANES
    }
    /// The padded plane: `pad` zero rows above and below, `pad` zero columns on the left and
    /// enough on the right that the last tile's loads stay inside the row.
    fn hp(&self) -> usize {
        self.h + 2 * self.pad
    }
    fn wp(&self) -> usize {
        (self.w + 2 * self.pad).max(self.tw() + self.k - 1)
    }
    fn taps(&self) -> usize {
        self.c * self.k * self.k
    }
    /// Forward block: `o` split into equal blocks of at most [`MAX_BLOCK`] channels.
    fn block(&self) -> usize {
        self.o.div_ceil(self.o.div_ceil(MAX_BLOCK))
    }
    /// The input gradient's convolution: `o` input channels, `c` outputs, padding `K-1-pad`.
    fn adjoint(&self) -> Shape {
        Shape {
            c: self.o,
            h: self.oh(),
            w: self.ow(),
            o: self.c,
            k: self.k,
            pad: self.k - 1 - self.pad,
        }
    }
}

/// Whether this CPU has the kernels' instructions (AVX2 and FMA; checked once, then cached).
pub(crate) fn available() -> bool {
    std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
}

/// Whether the direct kernels run this convolution's forward pass and input gradient rather than
/// im2col + gemm: stride 1, a square 3x3, 5x5 or 7x7 kernel with padding below its size, rows
/// at least one vector wide, a CPU with AVX2 + FMA, and a layer whose padded image and weight
/// block stay in a core's L2 cache (at most 128 input and 64 output channels, a padded image of
/// at most 64K values: every CIFAR layer, none of VGG-16's on ImageNet). Measured per layer
/// (one thread, batch 256, forward / input gradient, ms, direct vs im2col + gemm): 32 channels
/// 16x16 3x3 18-21 / 16-20 vs 27-29 / 25-34; 64 channels 8x8 18-20 / 22-28 vs 23-25 / 28;
/// Inception's 112 -> 64 5x5 on 8x8 75-82 / 77-81 vs 118-154 / 147-191.
pub(crate) fn applies(s: &Shape, stride: usize) -> bool {
    supports(s, stride)
        && matches!(s.k, 3 | 5 | 7)
        && s.ow() >= LANES
        && s.c <= 128
        && s.o <= 64
        && s.c * s.hp() * s.wp() <= 1 << 16
}

/// Whether the weight gradient of a layer the kernels run ([`applies`]) is computed here too: at
/// most 16 input and output channels, where it was measured faster (CIFAR LeNet-5, the 16-channel
/// layers). Beyond that im2col + gemm is as fast (one thread, batch 256, best of 16, weight
/// gradient with the backward's fixed costs: 32 channels 16x16 37.5 ms vs 34.6 direct, 64
/// channels 8x8 22.7 vs 25.0, Inception's 112 -> 64 5x5 98.8 vs 103.8; whole ResNet and
/// Inception steps with the direct one everywhere: no difference in three rounds).
pub(crate) fn weight_grad_applies(s: &Shape) -> bool {
    s.c <= 16 && s.o <= 16
}

/// Whether the kernels can run `s` at all (what a caller forcing this path gets).
pub(crate) fn supports(s: &Shape, stride: usize) -> bool {
    stride == 1 && s.k >= 1 && s.pad < s.k && available()
}

/// Copies image `x` (`c, h, w`) into `buf` as zero-padded planes (`c, hp, wp`).
fn pad_into(x: &[f32], s: &Shape, buf: &mut Vec<f32>) {
    buf.clear();
    buf.resize(s.c * s.hp() * s.wp(), 0.0);
    pad_image(x, s, buf);
}

/// Writes the pixels of image `x` into the padded planes `dst` (`c, hp, wp`), whose borders are
/// left as they are (zero in every caller's buffer: only the interior is ever written).
fn pad_image(x: &[f32], s: &Shape, dst: &mut [f32]) {
    let (hp, wp) = (s.hp(), s.wp());
    for c in 0..s.c {
        for y in 0..s.h {
            let at = (c * hp + y + s.pad) * wp + s.pad;
            dst[at..at + s.w].copy_from_slice(&x[(c * s.h + y) * s.w..][..s.w]);
        }
    }
}

/// The weights `(o, c, k, k)` regrouped per forward block of `B` channels as `[block][tap][B]`
/// (the missing channels of a last, smaller block zero).
fn pack_weights(w: &[f32], s: &Shape) -> Vec<f32> {
    let (b, taps) = (s.block(), s.taps());
    let mut out = vec![0f32; s.o.div_ceil(b) * taps * b];
    for o in 0..s.o {
        for t in 0..taps {
            out[((o / b) * taps + t) * b + o % b] = w[o * taps + t];
        }
    }
    out
}

/// The flipped, transposed weights of the input gradient: `w'[c][o][i][j] = w[o][c][K-1-i][K-1-j]`.
fn adjoint_weights(w: &[f32], s: &Shape) -> Vec<f32> {
    let (kk, taps) = (s.k * s.k, s.taps());
    let mut out = vec![0f32; w.len()];
    for o in 0..s.o {
        for c in 0..s.c {
            for t in 0..kk {
                out[(c * s.o + o) * kk + (kk - 1 - t)] = w[o * taps + c * kk + t];
            }
        }
    }
    out
}

/// Horizontal sum of the 8 lanes.
#[target_feature(enable = "avx2,fma")]
fn hsum(a: __m256) -> f32 {
    let mut v = [0f32; LANES];
    // SAFETY: `v` holds 8 floats.
    unsafe { _mm256_storeu_ps(v.as_mut_ptr(), a) };
    v.iter().sum()
}

/// One image: `out (o, oh, ow) = conv(xp, w) [+ bias]`, then ReLU if `relu`. `xp` is the padded
/// image, `wpk` the weights packed by [`pack_weights`] for blocks of `B`, `offs[t]` the offset
/// of tap `t = (c, i, j)` in `xp`.
#[target_feature(enable = "avx2,fma")]
fn forward_image<const B: usize>(
    xp: &[f32],
    wpk: &[f32],
    offs: &[usize],
    bias: Option<&[f32]>,
    relu: bool,
    s: &Shape,
    out: &mut [f32],
) {
    let (oh, ow, wp, taps) = (s.oh(), s.ow(), s.wp(), s.taps());
    // The farthest load: the last tile of the last row at the farthest tap.
    assert!(
        offs.len() == taps
            && (oh - 1) * wp + s.tw() - LANES + offs.iter().max().copied().unwrap_or(0) + LANES
                <= xp.len()
    );
    for (blk, wb) in wpk.chunks_exact(taps * B).enumerate() {
        let o0 = blk * B;
        for y in 0..oh {
            for t in 0..s.tiles() {
                let base = xp[y * wp + t * LANES..].as_ptr();
                let mut acc = [_mm256_setzero_ps(); B];
                for (wt, &off) in wb.chunks_exact(B).zip(offs) {
                    // SAFETY: base + off + 8 stays inside xp (asserted above).
                    let x = unsafe { _mm256_loadu_ps(base.add(off)) };
                    for (a, &w) in acc.iter_mut().zip(wt) {
                        *a = _mm256_fmadd_ps(_mm256_set1_ps(w), x, *a);
                    }
                }
                let (x0, len) = (t * LANES, LANES.min(ow - t * LANES));
                for (k, a) in acc.iter().enumerate().take(s.o - o0) {
                    let mut v = [0f32; LANES];
                    // SAFETY: `v` holds 8 floats.
                    unsafe { _mm256_storeu_ps(v.as_mut_ptr(), *a) };
                    let b = bias.map_or(0.0, |b| b[o0 + k]);
                    let dst = &mut out[((o0 + k) * oh + y) * ow + x0..][..len];
                    for (d, v) in dst.iter_mut().zip(v) {
                        *d = if relu { super::relu1(v + b) } else { v + b };
                    }
                }
            }
        }
    }
}

/// The weight gradient of a group of `imgs` images, added into `dw (o, taps)`: for `B` output
/// channels and one kernel row (`K` taps of input channel `c`, row `i`) at a time, per 8 pixels
/// `B` gradient loads and `K` shifted input loads feed `B * K` independent accumulators, summed
/// over the group's images before their lanes are added up (on an 8x8 map one image gives
/// each accumulator only 8 vector steps). `xp` holds the padded images one after the other,
/// `dyp` their output gradients with rows zero-extended to whole tiles (`oh` rows of `tw`) and
/// whole blocks of `B` planes (the extra planes zero), `planes` planes per image.
#[target_feature(enable = "avx2,fma")]
fn weight_grad_group<const K: usize, const B: usize>(
    xp: &[f32],
    dyp: &[f32],
    imgs: usize,
    planes: usize,
    s: &Shape,
    dw: &mut [f32],
) {
    let (oh, hp, wp, taps, tw) = (s.oh(), s.hp(), s.wp(), s.taps(), s.tw());
    let (plane, x_img) = (oh * tw, s.c * hp * wp);
    // Rows i..i+oh of a plane and columns up to tw + K - 2 lie inside it; B planes per
    // block in dyp.
    assert!(
        s.k == K
            && imgs * x_img <= xp.len()
            && tw + K - 1 <= wp
            && planes >= s.o.div_ceil(B) * B
            && dyp.len() >= imgs * planes * plane
    );
    for o0 in (0..s.o).step_by(B) {
        for c in 0..s.c {
            for i in 0..K {
                let mut acc = [[_mm256_setzero_ps(); K]; B];
                for g in 0..imgs {
                    let x = xp[g * x_img + (c * hp + i) * wp..].as_ptr();
                    let dys: [*const f32; B] =
                        std::array::from_fn(|k| dyp[(g * planes + o0 + k) * plane..].as_ptr());
                    for y in 0..oh {
                        for t in (0..tw).step_by(LANES) {
                            // SAFETY: row y of each gradient plane and row i + y of the input
                            // plane, columns t..t + K + 7, are inside their
                            // buffers (asserted above).
                            let d: [__m256; B] = std::array::from_fn(|b| unsafe {
                                _mm256_loadu_ps(dys[b].add(y * tw + t))
                            });
                            // One load of the shifted input per tap j, used by all B channels.
                            #[allow(clippy::needless_range_loop)]
                            for j in 0..K {
                                let xv = unsafe { _mm256_loadu_ps(x.add(y * wp + t + j)) };
                                for b in 0..B {
                                    acc[b][j] = _mm256_fmadd_ps(d[b], xv, acc[b][j]);
                                }
                            }
                        }
                    }
                }
                for (k, row) in acc.iter().enumerate().take(s.o - o0) {
                    let at = (o0 + k) * taps + (c * K + i) * K;
                    for (d, a) in dw[at..at + K].iter_mut().zip(row) {
                        *d += hsum(*a);
                    }
                }
            }
        }
    }
}

/// Channels per weight-gradient block for a `k x k` kernel: `B * k` accumulators plus the `B`
/// gradient vectors and one input vector within the 16 registers (the dispatch in
/// `weight_grad_one` follows this table; 4 channels of a 3x3 kernel, 17 registers, spilled and
/// ran at half the speed).
fn weight_grad_block(k: usize) -> usize {
    match k {
        1 | 2 => 4,
        3 => 3,
        4..=6 => 2,
        _ => 1,
    }
}

fn forward_one(
    xp: &[f32],
    wpk: &[f32],
    offs: &[usize],
    bias: Option<&[f32]>,
    relu: bool,
    s: &Shape,
    out: &mut [f32],
) {
    assert!(available());
    // SAFETY: the CPU has AVX2 and FMA (asserted above).
    unsafe {
        match s.block() {
            1 => forward_image::<1>(xp, wpk, offs, bias, relu, s, out),
            2 => forward_image::<2>(xp, wpk, offs, bias, relu, s, out),
            3 => forward_image::<3>(xp, wpk, offs, bias, relu, s, out),
            4 => forward_image::<4>(xp, wpk, offs, bias, relu, s, out),
            5 => forward_image::<5>(xp, wpk, offs, bias, relu, s, out),
            6 => forward_image::<6>(xp, wpk, offs, bias, relu, s, out),
            7 => forward_image::<7>(xp, wpk, offs, bias, relu, s, out),
            _ => forward_image::<8>(xp, wpk, offs, bias, relu, s, out),
        }
    }
}

fn weight_grad_one(xp: &[f32], dyp: &[f32], imgs: usize, planes: usize, s: &Shape, dw: &mut [f32]) {
    assert!(available());
    // SAFETY: the CPU has AVX2 and FMA (asserted above).
    unsafe {
        match s.k {
            1 => weight_grad_group::<1, 4>(xp, dyp, imgs, planes, s, dw),
            2 => weight_grad_group::<2, 4>(xp, dyp, imgs, planes, s, dw),
            3 => weight_grad_group::<3, 3>(xp, dyp, imgs, planes, s, dw),
            4 => weight_grad_group::<4, 2>(xp, dyp, imgs, planes, s, dw),
            5 => weight_grad_group::<5, 2>(xp, dyp, imgs, planes, s, dw),
            6 => weight_grad_group::<6, 2>(xp, dyp, imgs, planes, s, dw),
            7 => weight_grad_group::<7, 1>(xp, dyp, imgs, planes, s, dw),
            k => weight_grad_group_any(xp, dyp, imgs, planes, s, dw, k),
        }
    }
}

/// Kernels wider than 7 (not used by [`applies`]; reachable by forcing the path): one tap at a
/// time, a block of one channel.
#[target_feature(enable = "avx2,fma")]
fn weight_grad_group_any(
    xp: &[f32],
    dyp: &[f32],
    imgs: usize,
    planes: usize,
    s: &Shape,
    dw: &mut [f32],
    k: usize,
) {
    let (oh, hp, wp, taps, tw) = (s.oh(), s.hp(), s.wp(), s.taps(), s.tw());
    let (plane, x_img) = (oh * tw, s.c * hp * wp);
    assert!(
        imgs * x_img <= xp.len()
            && tw + k - 1 <= wp
            && planes >= s.o
            && dyp.len() >= imgs * planes * plane
    );
    for g in 0..imgs {
        for o in 0..s.o {
            for c in 0..s.c {
                for i in 0..k {
                    for j in 0..k {
                        let mut acc = _mm256_setzero_ps();
                        for y in 0..oh {
                            for t in (0..tw).step_by(LANES) {
                                // SAFETY: as in weight_grad_group (asserted above).
                                let d = unsafe {
                                    _mm256_loadu_ps(
                                        dyp[((g * planes + o) * oh + y) * tw + t..].as_ptr(),
                                    )
                                };
                                let x = unsafe {
                                    _mm256_loadu_ps(
                                        xp[g * x_img + (c * hp + i + y) * wp + t + j..].as_ptr(),
                                    )
                                };
                                acc = _mm256_fmadd_ps(d, x, acc);
                            }
                        }
                        dw[o * taps + (c * k + i) * k + j] += hsum(acc);
                    }
                }
            }
        }
    }
}

/// The forward pass of images `x` (`n, c, h, w`) into `out` (`n, o, oh, ow`), parallel over images.
/// Needs [`supports`].
pub(crate) fn forward(
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    relu: bool,
    s: &Shape,
    out: &mut [f32],
) {
    use rayon::prelude::*;
    let (img, out_img) = (s.c * s.h * s.w, s.o * s.oh() * s.ow());
    let (hp, wp) = (s.hp(), s.wp());
    let offs: Vec<usize> = (0..s.c)
        .flat_map(|c| (0..s.k).flat_map(move |i| (0..s.k).map(move |j| (c * hp + i) * wp + j)))
        .collect();
    let wpk = pack_weights(w, s);
    out.par_chunks_mut(out_img).zip(x.par_chunks(img)).for_each_init(Vec::new, |xp, (out, x)| {
        pad_into(x, s, xp);
        forward_one(xp, &wpk, &offs, bias, relu, s, out);
    });
}

/// Bytes of padded input and output gradient a weight-gradient group should stay within (a
/// share of a core's L2 cache, re-read once per channel block and kernel row).
const GROUP_BYTES: usize = 192 << 10;

/// The weight gradient `(o, c, k, k)` of images `x` (`n, c, h, w`) for the output gradient `dy`
/// (`n, o, oh, ow`): each core sums over its share of the images in groups that fit its L2
/// cache ([`GROUP_BYTES`]), the shares are added at the end.
pub(crate) fn weight_grad(x: &[f32], dy: &[f32], s: &Shape) -> Vec<f32> {
    use rayon::prelude::*;
    let (img, out_img, oh, ow, tw) =
        (s.c * s.h * s.w, s.o * s.oh() * s.ow(), s.oh(), s.ow(), s.tw());
    let (x_img, n) = (s.c * s.hp() * s.wp(), x.len() / img.max(1));
    let per = n.div_ceil(super::threads()).max(1);
    let b = weight_grad_block(s.k);
    let planes = s.o.div_ceil(b) * b; // whole blocks of channels
    let group = (GROUP_BYTES / (4 * (x_img + planes * oh * tw))).clamp(1, per);
    let parts: Vec<Vec<f32>> = (0..n.div_ceil(per))
        .into_par_iter()
        .map(|part| {
            // Zeroed once: the padding borders and the tails of the gradient rows stay zero.
            let (mut xp, mut dyp, mut dw) = (
                vec![0f32; group * x_img],
                vec![0f32; group * planes * oh * tw],
                vec![0f32; s.o * s.taps()],
            );
            let end = ((part + 1) * per).min(n);
            for first in (part * per..end).step_by(group) {
                let m = group.min(end - first);
                for g in 0..m {
                    let i = first + g;
                    pad_image(&x[i * img..(i + 1) * img], s, &mut xp[g * x_img..(g + 1) * x_img]);
                    // The real channels' rows; their tails and the extra planes stay zero.
                    for (row, src) in dyp[g * planes * oh * tw..]
                        .chunks_exact_mut(tw)
                        .zip(dy[i * out_img..(i + 1) * out_img].chunks_exact(ow))
                    {
                        row[..ow].copy_from_slice(src);
                    }
                }
                weight_grad_one(&xp, &dyp, m, planes, s, &mut dw);
            }
            dw
        })
        .collect();
    let mut dw = vec![0f32; s.o * s.taps()];
    for p in parts {
        dw.iter_mut().zip(p).for_each(|(a, b)| *a += b);
    }
    dw
}

/// The input gradient `(n, c, h, w)` for the output gradient `dy` (`n, o, oh, ow`).
pub(crate) fn input_grad(dy: &[f32], w: &[f32], s: &Shape, dx: &mut [f32]) {
    forward(dy, &adjoint_weights(w, s), None, false, &s.adjoint(), dx);
}
