//! torchvision's AlexNet (`torchvision.models.alexnet`); the classes are
//! read from `classifier.6`.

use super::read::dim;
use super::{Family, Model, Settings};
use crate::emit::{Conv, Emit, conv_out};
use crate::error::ExportError;
use crate::source::StateDict;

/// The family entry of the registry.
pub const FAMILY: Family = Family {
    name: "alexnet",
    variants: &["alexnet"],
    settings: &[],
    guess,
};

/// AlexNet with its number of classes.
#[derive(Debug, Clone)]
pub struct AlexNet {
    classes: u64,
}

fn guess(sd: &StateDict, _: Option<&str>, _: &Settings) -> Result<Box<dyn Model>, ExportError> {
    Ok(Box::new(AlexNet {
        classes: dim(sd, "classifier.6.weight", 0).unwrap_or(1000),
    }))
}

impl Model for AlexNet {
    fn family(&self) -> &'static str {
        "alexnet"
    }

    fn variant(&self) -> String {
        "alexnet".into()
    }

    fn classes(&self) -> u64 {
        self.classes
    }

    fn forward(&self, e: &mut Emit<'_>, x: &str, size: (u64, u64)) -> Result<String, ExportError> {
        let pool = |hw: (u64, u64)| (conv_out(hw.0, 3, 2, 0, 1), conv_out(hw.1, 3, 2, 0, 1));
        let mut hw = (conv_out(size.0, 11, 4, 2, 1), conv_out(size.1, 11, 4, 2, 1));
        let y = e.conv2d("features.0", x, Conv::new(3, 64, 11, 4, 2).bias())?;
        let y = e.relu("features.1", &y)?;
        let y = e.max_pool("features.2", &y, 3, 2, 0, false, hw)?;
        hw = pool(hw);
        let y = e.conv2d("features.3", &y, Conv::new(64, 192, 5, 1, 2).bias())?;
        let y = e.relu("features.4", &y)?;
        let y = e.max_pool("features.5", &y, 3, 2, 0, false, hw)?;
        hw = pool(hw);
        let y = e.conv2d("features.6", &y, Conv::new(192, 384, 3, 1, 1).bias())?;
        let y = e.relu("features.7", &y)?;
        let y = e.conv2d("features.8", &y, Conv::new(384, 256, 3, 1, 1).bias())?;
        let y = e.relu("features.9", &y)?;
        let y = e.conv2d("features.10", &y, Conv::new(256, 256, 3, 1, 1).bias())?;
        let y = e.relu("features.11", &y)?;
        let y = e.max_pool("features.12", &y, 3, 2, 0, false, hw)?;
        hw = pool(hw);
        let y = e.adaptive_avg_pool("avgpool", &y, hw, (6, 6))?;
        let y = e.flatten("", &y)?;
        let y = e.linear("classifier.1", &y, 256 * 36, 4096)?;
        let y = e.relu("classifier.2", &y)?;
        let y = e.linear("classifier.4", &y, 4096, 4096)?;
        let y = e.relu("classifier.5", &y)?;
        e.linear("classifier.6", &y, 4096, self.classes)
    }
}
