//! Which inference rule covers which op, by domain, op type and opset
//! version (rules whose semantics changed are chosen by version inside the
//! rule file: Squeeze/Unsqueeze axes become an input at 13, reductions at
//! 13 for ReduceSum and 18 for the others, Reshape gains allowzero at 14).

use super::{
    NodeCx, RuleResult, activation, attention, conv, elementwise, index, matmul, norm, reduce, rnn,
    shape_ops, training,
};

/// An inference rule.
pub type RuleFn = fn(&mut NodeCx<'_>) -> RuleResult;

/// The rule for `op_type` of `domain` ("" for ai.onnx) at `version`.
pub fn rule(domain: &str, op_type: &str, version: i64) -> Option<RuleFn> {
    if version < 1 {
        return None;
    }
    if domain == "ai.onnx.ml" {
        return ml_rule(op_type);
    }
    if domain == "ai.onnx.preview" {
        let r: RuleFn = match op_type {
            "FlexAttention" => attention::flex_attention,
            _ => return None,
        };
        return Some(r);
    }
    if domain == "ai.onnx.preview.training" {
        let r: RuleFn = match op_type {
            "Adagrad" | "Momentum" | "Adam" => training::optimizer,
            _ => return None,
        };
        return Some(r);
    }
    if !domain.is_empty() {
        return None;
    }
    let r: RuleFn = match op_type {
        "Add" | "Sub" | "Mul" | "Div" | "Pow" if version >= 7 => elementwise::binary_same,
        // versions onnx has no inference function for
        "Add"
        | "Sub"
        | "Mul"
        | "Div"
        | "Relu"
        | "Sigmoid"
        | "Tanh"
        | "Abs"
        | "Neg"
        | "Exp"
        | "Log"
        | "Sqrt"
        | "Reciprocal"
        | "Floor"
        | "Ceil"
        | "LeakyRelu"
        | "Elu"
        | "Selu"
        | "HardSigmoid"
        | "PRelu"
        | "Max"
        | "Min"
        | "Sum"
        | "Mean"
        | "Cast"
        | "Dropout"
        | "Clip"
        | "Tile"
        | "BatchNormalization"
        | "Gemm"
        | "InstanceNormalization"
            if version < 6 =>
        {
            activation::none
        }
        "Concat" if version < 4 => activation::none,
        "Reshape" if version < 5 => activation::none,
        "Upsample" if version < 7 => activation::none,
        "Split" if version < 2 => activation::none,
        // the logical ops of opset 1 (legacy broadcast): bool, input 0's shape
        "And" | "Or" | "Xor" | "Equal" | "Less" | "Greater" if version < 7 => activation::bool_like,
        "Pow" => activation::same,
        "Max" | "Min" | "Sum" | "Mean" if version < 8 => activation::same,
        "Slice" if version < 10 => shape_ops::slice_v1,
        // opset 6: legacy `broadcast` attribute, the output is input 0
        "Add" | "Sub" | "Mul" | "Div" if version == 6 => activation::same,
        "And" | "Or" | "Xor" | "Equal" | "Less" | "Greater" | "LessOrEqual" | "GreaterOrEqual"
            if version >= 7 =>
        {
            elementwise::binary_bool
        }
        "Mod" if version >= 10 => elementwise::binary_same,
        "BitShift" if version >= 11 => elementwise::binary_same,
        "Max" | "Min" | "Sum" | "Mean" if version >= 8 => elementwise::variadic,
        "Where" => elementwise::where_,
        "Relu" | "Sigmoid" | "Tanh" | "Abs" | "Neg" | "Exp" | "Log" | "Sqrt" | "Reciprocal"
        | "Floor" | "Ceil" | "Erf" | "Identity" | "LeakyRelu" | "Elu" | "Selu" | "HardSigmoid"
        | "HardSwish" | "Softplus" | "Softsign" | "Sin" | "Cos" | "Not" | "Sign" | "Round"
        | "Mish" | "Gelu" | "Celu" | "ThresholdedRelu" | "PRelu"
            if version >= 6 =>
        {
            activation::same
        }
        // ops that never had a version without an inference function
        "Not" | "Acos" | "Acosh" | "Asin" | "Asinh" | "Atan" | "Atanh" | "Cosh" | "Sinh"
        | "Tan" | "Swish" | "Shrink" | "BitwiseNot" => activation::same,
        "IsInf" | "IsNaN" | "RegexFullMatch" => activation::bool_like,
        "Scatter" => activation::same,
        "StringConcat" => elementwise::binary_same,
        "StringSplit" => activation::string_split,
        "StringNormalizer" => activation::string_normalizer,
        "BitCast" => activation::bit_cast,
        "DynamicQuantizeLinear" => activation::dynamic_quantize_linear,
        "CenterCropPad" => shape_ops::center_crop_pad,
        "AffineGrid" => shape_ops::affine_grid,
        "HannWindow" | "HammingWindow" | "BlackmanWindow" => shape_ops::window,
        "MaxUnpool" => conv::max_unpool,
        "DFT" => shape_ops::dft,
        "Col2Im" => shape_ops::col2im,
        "MelWeightMatrix" => shape_ops::mel_weight_matrix,
        "RoiAlign" => conv::roi_align,
        "ImageDecoder" => activation::image_decoder,
        "TfIdfVectorizer" => index::tf_idf_vectorizer,
        "EyeLike" | "Bernoulli" | "RandomUniformLike" | "RandomNormalLike" => {
            activation::dtype_like
        }
        "BitwiseAnd" | "BitwiseOr" | "BitwiseXor" => elementwise::binary_same,
        "Softmax" | "LogSoftmax" => activation::same,
        "Clip" if version >= 6 => activation::same,
        "Cast" if version >= 6 => activation::cast,
        "CastLike" => activation::cast_like,
        "Trilu" | "Hardmax" | "CumSum" | "CumProd" | "LpNormalization" | "ScatterElements"
        | "ScatterND" => activation::same,
        "Dropout" if version >= 6 => activation::dropout,
        "Conv" | "DeformConv" => conv::conv,
        "ConvInteger" => conv::conv_integer,
        "QLinearConv" => conv::qlinear_conv,
        "SwiGLU" => elementwise::swiglu,
        "ConvTranspose" => conv::conv_transpose,
        "Resize" if version >= 10 => conv::resize,
        "Upsample" if version >= 7 => conv::resize,
        "MaxPool" | "AveragePool" | "LpPool" => conv::pool,
        "GlobalAveragePool" | "GlobalMaxPool" | "GlobalLpPool" => conv::global_pool,
        "ReduceMean" | "ReduceSum" | "ReduceMax" | "ReduceMin" | "ReduceProd" | "ReduceL1"
        | "ReduceL2" | "ReduceLogSum" | "ReduceLogSumExp" | "ReduceSumSquare" => reduce::reduce,
        "ArgMax" | "ArgMin" => reduce::arg,
        "Shape" => shape_ops::shape,
        "Size" => shape_ops::size,
        "Reshape" => shape_ops::reshape,
        "Flatten" => shape_ops::flatten,
        "Transpose" => shape_ops::transpose,
        "Squeeze" => shape_ops::squeeze,
        "Unsqueeze" => shape_ops::unsqueeze,
        "Concat" if version >= 4 => shape_ops::concat,
        "Gather" => shape_ops::gather,
        "Slice" if version >= 10 => shape_ops::slice,
        "Constant" if version >= 9 => shape_ops::constant,
        "GatherElements" => shape_ops::gather_elements,
        "Tile" if version >= 6 => shape_ops::tile,
        "TopK" => shape_ops::top_k,
        "Expand" => shape_ops::expand,
        "Split" => shape_ops::split,
        "Pad" => shape_ops::pad,
        "ConstantOfShape" => shape_ops::constant_of_shape,
        "Range" => shape_ops::range,
        "MatMul" => matmul::matmul,
        "MatMulInteger" => matmul::matmul_integer,
        "QLinearMatMul" => matmul::qlinear_matmul,
        "Det" => matmul::det,
        "Einsum" => matmul::einsum,
        "Attention" => attention::attention,
        "RotaryEmbedding" => attention::rotary_embedding,
        "LinearAttention" => attention::linear_attention,
        "CausalConvWithState" => conv::causal_conv_with_state,
        "RNN" | "GRU" | "LSTM" => rnn::rnn,
        "GatherND" => index::gather_nd,
        "Compress" => index::compress,
        "NonZero" => index::non_zero,
        "Unique" => index::unique,
        "NonMaxSuppression" => index::non_max_suppression,
        "TensorScatter" => index::tensor_scatter,
        "ReverseSequence" => index::reverse_sequence,
        "DepthToSpace" | "SpaceToDepth" => shape_ops::depth_space,
        "Gemm" if version >= 6 => matmul::gemm,
        "BatchNormalization" if version >= 6 => norm::first_like_input,
        "InstanceNormalization" | "LayerNormalization" | "LRN" | "RMSNormalization" => {
            norm::first_like_input
        }
        "QuantizeLinear" | "DequantizeLinear" if version >= 10 => norm::quantize,
        "NegativeLogLikelihoodLoss" | "SoftmaxCrossEntropyLoss" => norm::nll_loss,
        "GridSample" => conv::grid_sample,
        "OneHot" => shape_ops::one_hot,
        _ => return None,
    };
    Some(r)
}

/// The rules of the ai.onnx.ml domain.
fn ml_rule(op_type: &str) -> Option<RuleFn> {
    let r: RuleFn = match op_type {
        "Binarizer" => activation::same,
        "ArrayFeatureExtractor" => index::array_feature_extractor,
        _ => return None,
    };
    Some(r)
}
