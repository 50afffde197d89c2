//! Op families and their colours, as Netron groups and colours operators
//! (its metadata's `category`): layers blue, activations red, pools green,
//! normalisation teal, shape and tensor ops brown. One table for ONNX and
//! Caffe2 op types, which mostly share names.

/// The family of an op, which picks its colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// Conv, Gemm, FC, LSTM, ... (Netron's "Layer").
    Layer,
    /// Relu, Sigmoid, Softmax, ...
    Activation,
    /// MaxPool, AveragePool, ...
    Pool,
    /// BatchNormalization, SpatialBN, LayerNormalization, ...
    Normalization,
    /// Dropout.
    Dropout,
    /// Reshape, Flatten, Squeeze, Shape, ...
    Shape,
    /// Concat, Split, Slice, Pad, Tile, ...
    Tensor,
    /// Transpose, Gather, Cast, Resize, ...
    Transform,
    /// Quantize and dequantize ops.
    Quantization,
    /// If, Loop, Scan, While.
    Control,
    /// Constant and the Caffe2 fill ops.
    Constant,
    /// Every other op (arithmetic, ...): black, as Netron draws it.
    Other,
    /// A graph input or output.
    Value,
    /// A folded scope.
    Collapsed,
}

impl Family {
    /// The family of an op type (ONNX or Caffe2 spelling).
    pub fn of(op_type: &str) -> Family {
        use Family::*;
        match op_type {
            "Conv" | "ConvTranspose" | "ConvInteger" | "QLinearConv" | "Gemm" | "FC"
            | "FCTransposed" | "LSTM" | "GRU" | "RNN" | "Einsum" | "DeformConv" | "ConvRelu"
            | "Attention" | "MultiHeadAttention" => Layer,
            "Relu" | "LeakyRelu" | "PRelu" | "Elu" | "Selu" | "Celu" | "Sigmoid"
            | "HardSigmoid" | "Tanh" | "Softmax" | "LogSoftmax" | "Softplus" | "Softsign"
            | "Gelu" | "FastGelu" | "HardSwish" | "Mish" | "Clip" | "ThresholdedRelu"
            | "Hardmax" | "Shrink" | "Swish" | "QuickGelu" => Activation,
            "MaxPool"
            | "AveragePool"
            | "GlobalAveragePool"
            | "GlobalMaxPool"
            | "LpPool"
            | "GlobalLpPool"
            | "MaxRoiPool"
            | "MaxUnpool"
            | "RoiAlign"
            | "AveragePool1D"
            | "AveragePool2D"
            | "AveragePool3D"
            | "MaxPool1D"
            | "MaxPool2D"
            | "MaxPool3D"
            | "QLinearAveragePool"
            | "QLinearGlobalAveragePool" => Pool,
            "BatchNormalization"
            | "SpatialBN"
            | "InstanceNormalization"
            | "InstanceNorm"
            | "LayerNormalization"
            | "LayerNorm"
            | "GroupNormalization"
            | "GroupNorm"
            | "LRN"
            | "LpNormalization"
            | "MeanVarianceNormalization"
            | "RMSNormalization"
            | "SkipLayerNormalization"
            | "Normalize" => Normalization,
            "Dropout" => Dropout,
            "Reshape" | "Flatten" | "Squeeze" | "Unsqueeze" | "Shape" | "Size" | "Expand"
            | "ExpandDims" | "Range" | "ConstantOfShape" | "FlattenToVec" => Shape,
            "Concat" | "Split" | "Slice" | "Pad" | "Tile" | "SplitToSequence"
            | "ConcatFromSequence" | "Identity" | "Where" | "Compress" | "NonZero" | "TopK"
            | "OneHot" | "ScatterND" | "ScatterElements" | "Scatter" | "GatherND" | "Trilu" => {
                Tensor
            }
            "Transpose" | "Gather" | "GatherElements" | "Cast" | "CastLike" | "Resize"
            | "Upsample" | "DepthToSpace" | "SpaceToDepth" | "ResizeNearest" | "NCHW2NHWC"
            | "NHWC2NCHW" | "ChannelShuffle" => Transform,
            "QuantizeLinear"
            | "DequantizeLinear"
            | "DynamicQuantizeLinear"
            | "Int8Quantize"
            | "Int8Dequantize" => Quantization,
            "If" | "Loop" | "Scan" | "While" | "Do" | "RecurrentNetwork" => Control,
            "Constant" => Constant,
            t if t.ends_with("Fill") => Constant,
            _ => Other,
        }
    }

    /// The header fill colour (`#rrggbb`), Netron's where it has one.
    pub fn fill(self) -> &'static str {
        match self {
            Family::Layer => "#335588",
            Family::Activation => "#702921",
            Family::Pool => "#335533",
            Family::Normalization => "#335544",
            Family::Dropout => "#454770",
            Family::Shape => "#6c4f47",
            Family::Tensor => "#59423b",
            Family::Transform => "#4d5a6b",
            Family::Quantization => "#503a00",
            Family::Control => "#5e3c7a",
            Family::Constant => "#7a7a7a",
            Family::Other => "#000000",
            Family::Value => "#eeeeee",
            Family::Collapsed => "#dde3ea",
        }
    }

    /// The header text colour that reads on [`fill`](Self::fill).
    pub fn text(self) -> &'static str {
        match self {
            Family::Value | Family::Collapsed => "#000000",
            _ => "#ffffff",
        }
    }

    /// The lower-case name used as a CSS class in the SVG.
    pub fn name(self) -> &'static str {
        match self {
            Family::Layer => "layer",
            Family::Activation => "activation",
            Family::Pool => "pool",
            Family::Normalization => "normalization",
            Family::Dropout => "dropout",
            Family::Shape => "shape",
            Family::Tensor => "tensor",
            Family::Transform => "transform",
            Family::Quantization => "quantization",
            Family::Control => "control",
            Family::Constant => "constant",
            Family::Other => "other",
            Family::Value => "value",
            Family::Collapsed => "collapsed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_of_both_spellings() {
        assert_eq!(Family::of("Conv"), Family::Layer);
        assert_eq!(Family::of("FC"), Family::Layer);
        assert_eq!(Family::of("SpatialBN"), Family::Normalization);
        assert_eq!(Family::of("BatchNormalization"), Family::Normalization);
        assert_eq!(Family::of("Relu"), Family::Activation);
        assert_eq!(Family::of("MaxPool"), Family::Pool);
        assert_eq!(Family::of("Reshape"), Family::Shape);
        assert_eq!(Family::of("GivenTensorFill"), Family::Constant);
        assert_eq!(Family::of("Add"), Family::Other);
        assert_ne!(Family::Layer.fill(), Family::Activation.fill());
    }
}
