//! The only calls into the `gemm` crate (the matrix kernel candle itself uses), behind a safe
//! function: every operand is a [`Mat`] view whose extent is checked against its buffer before
//! the unchecked call, so a wrong size or stride in a caller panics with a message instead of
//! reading or writing out of bounds.

use gemm::Parallelism;

/// A read-only `rows x cols` matrix view: element `(i, j)` is
/// `data[i * row_stride + j * col_stride]`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Mat<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a> Mat<'a> {
    /// The row-major `rows x cols` matrix whose rows start `ld` elements apart (`ld >= cols`).
    pub(crate) fn new(data: &'a [f32], rows: usize, cols: usize, ld: usize) -> Self {
        Mat { data, rows, cols, row_stride: ld, col_stride: 1 }
    }

    /// The transpose of this view (no copy: the strides swap).
    pub(crate) fn t(self) -> Self {
        Mat {
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
            ..self
        }
    }
}

/// The destination of a product: `rows x cols`, row-major or column-major.
#[derive(Debug)]
pub(crate) struct MatMut<'a> {
    data: &'a mut [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a> MatMut<'a> {
    /// Row-major, rows `cols` apart.
    pub(crate) fn new(data: &'a mut [f32], rows: usize, cols: usize) -> Self {
        MatMut { data, rows, cols, row_stride: cols, col_stride: 1 }
    }

    /// Column-major: element `(i, j)` at `i + j * rows`. gemm keeps `rows` as its row dimension,
    /// which decides what it packs: the weight gradient `dW (O, CKK) = dY @ col^T` written this
    /// way packs `dY` (O rows) and streams `col`, instead of packing all CKK rows of `col` with a
    /// transposing copy for only O multiply-adds per element (23% of CIFAR LeNet-5's step).
    pub(crate) fn col_major(data: &'a mut [f32], rows: usize, cols: usize) -> Self {
        MatMut { data, rows, cols, row_stride: 1, col_stride: rows }
    }
}

/// One past the highest index a `rows x cols` view with these strides reads (0 when empty).
fn extent(rows: usize, cols: usize, row_stride: usize, col_stride: usize) -> usize {
    if rows == 0 || cols == 0 {
        return 0;
    }
    (rows - 1) * row_stride + (cols - 1) * col_stride + 1
}

/// `dst = lhs @ rhs`, or `dst += lhs @ rhs` when `accumulate`.
///
/// # Panics
/// When the shapes do not chain (`lhs: (m, k)`, `rhs: (k, n)`, `dst: (m, n)`) or a view
/// reaches past its buffer: a bug in the calling kernel, never a property of user input.
pub(crate) fn matmul(
    dst: MatMut<'_>,
    accumulate: bool,
    lhs: Mat<'_>,
    rhs: Mat<'_>,
    par: Parallelism,
) {
    let (m, n, k) = (dst.rows, dst.cols, lhs.cols);
    assert!(
        lhs.rows == m && rhs.rows == k && rhs.cols == n,
        "gemm: ({}, {}) @ ({}, {}) does not give ({m}, {n})",
        lhs.rows,
        lhs.cols,
        rhs.rows,
        rhs.cols
    );
    for (what, len, reach) in [
        ("dst", dst.data.len(), extent(m, n, dst.row_stride, dst.col_stride)),
        ("lhs", lhs.data.len(), extent(m, k, lhs.row_stride, lhs.col_stride)),
        ("rhs", rhs.data.len(), extent(k, n, rhs.row_stride, rhs.col_stride)),
    ] {
        assert!(reach <= len, "gemm: {what} view reaches element {reach} of a buffer of {len}");
    }
    if m == 0 || n == 0 {
        return;
    }
    let s = |x: usize| x as isize;
    // SAFETY: every element the three views address lies inside its slice (checked above), the
    // destination is borrowed mutably and so aliases neither input, and gemm reads and writes
    // nothing outside the given views.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.data.as_mut_ptr(),
            s(dst.col_stride),
            s(dst.row_stride),
            accumulate,
            lhs.data.as_ptr(),
            s(lhs.col_stride),
            s(lhs.row_stride),
            rhs.data.as_ptr(),
            s(rhs.col_stride),
            s(rhs.row_stride),
            if accumulate { 1.0 } else { 0.0 },
            1.0,
            false,
            false,
            false,
            par,
        )
    }
}
