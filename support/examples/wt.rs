use support::imagenet::*;
use support::efficientnet::EfficientNetLite;
fn main() -> support::Result<()> {
    let m = EfficientNetLite::new(0, &support::Device::Cpu)?;
    m.load(std::env::args().nth(1).unwrap())?;
    let p = Preset::efficientnet_lite(224);
    let cat = p.load("/work/shared/data/imagenet/cat.jpg")?;
    print_top5(&top_k(&m, &cat, 5)?, 35);
    let f = ValFolder::open("/work/shared/data/imagenet/val", "/work/shared/data/imagenet/val_labels.txt")?;
    evaluate(&m, &f, &p, 32)?;
    Ok(())
}
