//! Computes the feature caches of `notebooks/transfer_learning.ipynb` in the background, where
//! the notebook's `transfer::extract_features_with_block` calls then load them:
//!
//!     nohup cargo run --release -p support --bin transfer_features &
//!
//! EfficientNet-Lite0 on the full CIFAR-10 (40,000 / 10,000 / 10,000, split seed 42), upscaled
//! with its ImageNet preset (resize 256, crop 224): the pooled 1280 features and the activations
//! entering its last block, ~1 h on 2 cores. `TRANSFER_BATCH` sets the batch (default 32).

use support::models::EfficientNetLite;
use support::recipes::transfer::{extract_features_with_block, Backbone};

fn main() -> support::Result<()> {
    let batch: usize =
        std::env::var("TRANSFER_BATCH").ok().and_then(|v| v.parse().ok()).unwrap_or(32);
    let (train, val, test) = support::data::cifar10_raw_splits(42)?;
    let lite0 = EfficientNetLite::pretrained(0, &support::Device::Cpu)?;
    let last = lite0.num_blocks() - 1;
    let backbone = Backbone::EfficientNet(lite0);
    for (name, ds) in [("test", &test), ("val", &val), ("train", &train)] {
        extract_features_with_block(&backbone, ds, name, batch, last)?;
    }
    Ok(())
}
