//! Figures and tables, as a notebook shows them: every [`Figure`] is a PNG that displays inline
//! (evcxr calls its `evcxr_display` when a cell's value is a figure) and saves to a file; a
//! [`Table`] displays as Markdown. All drawing code of the crate lives here; the types of the
//! other modules (`History`, `ConfusionMatrix`, ...) hand their numbers to these functions.

mod figure;
mod plot;
mod table;

pub use figure::{stack, Figure};
pub use plot::{
    bar_chart, bar_chart_with, heatmap, image, image_and_curve, image_grid, kernels, lines,
    loss_curves, matrix, prediction_grid, scatter, scatter_groups, BarChart, Panels, PointGroup,
};
pub use table::Table;
