//! Named parameter tensors of a network, keyed `<layer>.<role>` (roles: `weight`, `bias`,
//! and for BatchNorm `gamma`, `beta`, `mean`, `var`). Layouts: Dense weights are
//! [out, in]; Conv2d weights are [out, in/groups, kh, kw] (the ONNX and PyTorch layout).

use std::collections::BTreeMap;

/// Values of a tensor.
#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    /// Every element stored.
    F32(Vec<f32>),
    /// Every element equal to one value (structure-only models: ONNX ConstantOfShape).
    Fill(f32),
}

/// A float tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// Dimensions.
    pub dims: Vec<usize>,
    /// Values.
    pub data: Data,
}

impl Tensor {
    /// A tensor holding `values` in row-major order; `values.len()` must equal the product
    /// of `dims`.
    pub fn new(dims: Vec<usize>, values: Vec<f32>) -> Tensor {
        assert_eq!(
            dims.iter().product::<usize>(),
            values.len(),
            "dims vs values"
        );
        Tensor {
            dims,
            data: Data::F32(values),
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.dims.iter().product()
    }

    /// True if the tensor has no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Element `i` in row-major order.
    pub fn get(&self, i: usize) -> f32 {
        match &self.data {
            Data::F32(v) => v[i],
            Data::Fill(x) => *x,
        }
    }

    /// Every element, materialized.
    pub fn to_vec(&self) -> Vec<f32> {
        match &self.data {
            Data::F32(v) => v.clone(),
            Data::Fill(x) => vec![*x; self.len()],
        }
    }

    /// Keeps the first `rows` rows of a [rows′, `cols`] tensor.
    ///
    /// # Panics
    /// If the tensor is not [rows′, `cols`] with rows′ ≥ `rows`.
    pub fn truncate_rows(&mut self, rows: usize, cols: usize) {
        assert!(
            self.dims.len() == 2 && self.dims[1] == cols && self.dims[0] >= rows,
            "truncating {:?} to [{rows}, {cols}]",
            self.dims
        );
        self.dims = vec![rows, cols];
        if let Data::F32(v) = &mut self.data {
            v.truncate(rows * cols);
        }
    }

    /// True if every element is stored (not a fill).
    pub fn is_dense(&self) -> bool {
        matches!(self.data, Data::F32(_))
    }
}

/// All parameter tensors of a network.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Weights {
    /// Tensors by `<layer>.<role>`.
    pub tensors: BTreeMap<String, Tensor>,
}

impl Weights {
    /// The tensor of `layer` in `role`, if present.
    pub fn get(&self, layer: &str, role: &str) -> Option<&Tensor> {
        self.tensors.get(&format!("{layer}.{role}"))
    }

    /// Stores the tensor of `layer` in `role`.
    pub fn insert(&mut self, layer: &str, role: &str, t: Tensor) {
        self.tensors.insert(format!("{layer}.{role}"), t);
    }
}
