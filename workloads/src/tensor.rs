//! An integer tensor: an `ndarray` array of values that all fit one [`IntFormat`].

use ndarray::{ArrayD, IxDyn};

use crate::error::WorkloadError;
use crate::int::{IntFormat, Overflow};

/// Integer tensor with a fixed element format; every element is in range (checked on
/// construction).
#[derive(Debug, Clone, PartialEq)]
pub struct IntTensor {
    data: ArrayD<i64>,
    format: IntFormat,
}

impl IntTensor {
    /// Builds a tensor from a shape and row-major values, checking each value's range.
    pub fn from_vec(
        shape: &[usize],
        values: Vec<i64>,
        format: IntFormat,
    ) -> Result<Self, WorkloadError> {
        let data = ArrayD::from_shape_vec(IxDyn(shape), values)
            .map_err(|e| WorkloadError::Shape(format!("{shape:?}: {e}")))?;
        Self::new(data, format)
    }

    /// Wraps an array, checking each value's range. Values are stored as `i64`, so unsigned
    /// formats may have at most 63 bits.
    pub fn new(data: ArrayD<i64>, format: IntFormat) -> Result<Self, WorkloadError> {
        if !format.is_signed() && format.bits() > 63 {
            return Err(WorkloadError::BadBits {
                bits: format.bits(),
            });
        }
        if let Some((index, &value)) = data
            .iter()
            .enumerate()
            .find(|(_, v)| !format.contains(i128::from(**v)))
        {
            return Err(WorkloadError::OutOfRange {
                value,
                index,
                format: format.name(),
                min: format.min() as i64,
                max: format.max() as i64,
            });
        }
        Ok(IntTensor { data, format })
    }

    /// The element format.
    pub fn format(&self) -> IntFormat {
        self.format
    }

    /// The values.
    pub fn data(&self) -> &ArrayD<i64> {
        &self.data
    }

    /// Shape.
    pub fn shape(&self) -> &[usize] {
        self.data.shape()
    }

    /// Element-wise sum in `out` format under the overflow rule.
    pub fn add(
        &self,
        other: &IntTensor,
        out: IntFormat,
        overflow: Overflow,
    ) -> Result<IntTensor, WorkloadError> {
        self.zip_with(other, out, |a, b| out.fit(a + b, overflow))
    }

    /// Element-wise exact product; the result format has the sum of the widths (one more if
    /// exactly one input is unsigned) and is signed if either input is. A result wider than
    /// the storage allows (64 bits signed, 63 unsigned) is an error, never a silent wrap.
    pub fn mul(&self, other: &IntTensor) -> Result<IntTensor, WorkloadError> {
        let (fa, fb) = (self.format, other.format);
        let signed = fa.is_signed() || fb.is_signed();
        let extra = u32::from(fa.is_signed() != fb.is_signed());
        let bits = fa.bits() + fb.bits() + extra;
        if bits > if signed { 64 } else { 63 } {
            return Err(WorkloadError::BadBits { bits });
        }
        let out = IntFormat::new(bits, signed)?;
        self.zip_with(other, out, |a, b| a * b)
    }

    /// Matrix product of two 2-D tensors, accumulated exactly and fitted to `acc`.
    pub fn matmul(
        &self,
        other: &IntTensor,
        acc: IntFormat,
        overflow: Overflow,
    ) -> Result<IntTensor, WorkloadError> {
        let (&[m, k], &[k2, n]) = (self.shape(), other.shape()) else {
            return Err(WorkloadError::Shape(format!(
                "matmul needs 2-D tensors, got {:?} and {:?}",
                self.shape(),
                other.shape()
            )));
        };
        if k != k2 {
            return Err(WorkloadError::Shape(format!(
                "matmul of {m}×{k} and {k2}×{n}"
            )));
        }
        let mut out = Vec::with_capacity(m * n);
        for i in 0..m {
            for j in 0..n {
                let s: i128 = (0..k)
                    .map(|t| i128::from(self.data[[i, t]]) * i128::from(other.data[[t, j]]))
                    .sum();
                out.push(acc.fit(s, overflow) as i64);
            }
        }
        IntTensor::from_vec(&[m, n], out, acc)
    }

    fn zip_with(
        &self,
        other: &IntTensor,
        out: IntFormat,
        f: impl Fn(i128, i128) -> i128,
    ) -> Result<IntTensor, WorkloadError> {
        if self.shape() != other.shape() {
            return Err(WorkloadError::Shape(format!(
                "{:?} vs {:?}",
                self.shape(),
                other.shape()
            )));
        }
        let data = ndarray::Zip::from(&self.data)
            .and(&other.data)
            .map_collect(|&a, &b| f(i128::from(a), i128::from(b)) as i64);
        IntTensor::new(data, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn construction_checks_range() {
        let e = IntTensor::from_vec(&[2], vec![1, 200], IntFormat::signed(8)).unwrap_err();
        assert!(e.to_string().contains("200") && e.to_string().contains("i8"));
    }

    #[test]
    fn matmul_by_hand() {
        let a = IntTensor::from_vec(&[2, 2], vec![1, 2, 3, 4], IntFormat::signed(4)).unwrap();
        let b = IntTensor::from_vec(&[2, 1], vec![5, -6], IntFormat::signed(4)).unwrap();
        let c = a.matmul(&b, IntFormat::signed(8), Overflow::Wrap).unwrap();
        assert_eq!(c.data().iter().copied().collect::<Vec<_>>(), vec![-7, -9]);
        let s = a.add(&a, IntFormat::signed(4), Overflow::Saturate).unwrap();
        assert_eq!(
            s.data().iter().copied().collect::<Vec<_>>(),
            vec![2, 4, 6, 7]
        );
        assert_eq!(a.mul(&a).unwrap().format(), IntFormat::signed(8));
        // 40 × 40 bits needs 80: refused, not wrapped.
        let big = IntTensor::from_vec(&[1], vec![1 << 38], IntFormat::signed(40)).unwrap();
        assert!(big.mul(&big).is_err());
        assert!(IntTensor::from_vec(&[1], vec![0], IntFormat::unsigned(64)).is_err());
    }
}
