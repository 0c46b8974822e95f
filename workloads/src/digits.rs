//! The 8×8 UCI digits (Alpaydin & Kaynak 1998, CC BY 4.0; `workloads/data/README.md`),
//! embedded in the crate, and the fixed seeded 80/20 split the project trains and tests on
//! (`docs/references.md` B4.2: 1,437 training and 360 test images).

use std::io::Read as _;

use ndarray::Array3;
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};

use crate::error::WorkloadError;
use crate::net::Shape;

/// The shipped file (gzip of 1,797 CSV rows: 64 pixels 0..=16, then the label).
pub const DIGITS_CSV_GZ: &[u8] = include_bytes!("../data/digits.csv.gz");

/// Seed of the project's split.
pub const SPLIT_SEED: u64 = 0x00D1_6175;

/// Labelled 8×8 images.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digits {
    /// Pixels, row-major, 0..=16.
    pub images: Vec<[u8; 64]>,
    /// Labels 0..=9.
    pub labels: Vec<u8>,
}

impl Digits {
    /// Parses a gzip-compressed digits CSV; `origin` is quoted in errors.
    pub fn parse_gz(bytes: &[u8], origin: &str) -> Result<Digits, WorkloadError> {
        let bad = |why: String| WorkloadError::File {
            path: origin.to_owned(),
            why,
        };
        let mut text = String::new();
        flate2::read::GzDecoder::new(bytes)
            .read_to_string(&mut text)
            .map_err(|e| bad(format!("not a readable gzip text file: {e}")))?;
        let mut d = Digits {
            images: vec![],
            labels: vec![],
        };
        for (i, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let fields: Vec<&str> = line.split(',').collect();
            if fields.len() != 65 {
                return Err(bad(format!(
                    "line {}: {} fields, expected 64 pixels and a label",
                    i + 1,
                    fields.len()
                )));
            }
            let num = |j: usize, max: u8| -> Result<u8, WorkloadError> {
                fields[j]
                    .trim()
                    .parse::<u8>()
                    .ok()
                    .filter(|&v| v <= max)
                    .ok_or_else(|| {
                        bad(format!(
                            "line {}, field {}: '{}' is not an integer in 0..={max}",
                            i + 1,
                            j + 1,
                            fields[j]
                        ))
                    })
            };
            let mut img = [0u8; 64];
            for (j, px) in img.iter_mut().enumerate() {
                *px = num(j, 16)?;
            }
            d.images.push(img);
            d.labels.push(num(64, 9)?);
        }
        Ok(d)
    }

    /// The embedded data set.
    pub fn embedded() -> Digits {
        Digits::parse_gz(DIGITS_CSV_GZ, "digits.csv.gz").expect("the shipped file parses")
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True if there is no image.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The images at `idx`, in that order.
    fn subset(&self, idx: &[usize]) -> Digits {
        Digits {
            images: idx.iter().map(|&i| self.images[i]).collect(),
            labels: idx.iter().map(|&i| self.labels[i]).collect(),
        }
    }

    /// A seeded shuffle split into (train, test) with ⌈len/5⌉ test images (as scikit-learn
    /// rounds a 0.2 test fraction): Fisher–Yates with
    /// ChaCha8 (`seed`), then the first 80 % train, the rest test.
    pub fn split(&self, seed: u64) -> (Digits, Digits) {
        let mut idx: Vec<usize> = (0..self.len()).collect();
        shuffle(&mut idx, &mut ChaCha8Rng::seed_from_u64(seed));
        let n_test = self.len().div_ceil(5);
        let n_train = self.len() - n_test;
        (self.subset(&idx[..n_train]), self.subset(&idx[n_train..]))
    }
}

/// Pixels per token (one row of the image) and tokens (rows).
pub const ROW: usize = 8;

/// A digit as the encoder's input, features × tokens: x[c][t] = pixel (row t, column c),
/// each value `f(pixel)` (pixel/16 for the float model, the code itself for the integer).
pub fn token_rows<T>(img: &[u8; 64], f: impl Fn(u8) -> T) -> Array3<T> {
    Array3::from_shape_fn((ROW, ROW, 1), |(c, t, _)| f(img[t * ROW + c]))
}

/// The two layouts of a digit as a network input: the 64 pixels as a vector (64×1×1, the
/// MLPs) or the 8 rows as 8 tokens of 8 pixels (8×8×1, features × tokens, the encoder).
pub fn digits_layout(shape: Shape) -> bool {
    shape == Shape::vector(64) || shape == Shape::new(ROW, ROW, 1)
}

/// A digit laid out as an input of `shape` ([`digits_layout`]), each pixel mapped by `f`.
///
/// # Panics
/// If `shape` is neither layout.
fn laid_out<T>(img: &[u8; 64], shape: Shape, f: impl Fn(u8) -> T) -> Array3<T> {
    if shape == Shape::vector(64) {
        Array3::from_shape_fn((64, 1, 1), |(i, _, _)| f(img[i]))
    } else {
        assert!(digits_layout(shape), "not a digits layout: {shape}");
        token_rows(img, f)
    }
}

/// Float inputs (pixel/16) of a digits set, as inputs of `shape` ([`digits_layout`]).
pub fn float_inputs(d: &Digits, shape: Shape) -> Vec<Array3<f32>> {
    d.images
        .iter()
        .map(|img| laid_out(img, shape, |p| f32::from(p) / 16.0))
        .collect()
}

/// Integer inputs (the pixel codes of `train::DIGITS_INPUT`) of a digits set, as inputs of
/// `shape` ([`digits_layout`]).
pub fn code_inputs(d: &Digits, shape: Shape) -> Vec<Array3<i64>> {
    d.images
        .iter()
        .map(|img| laid_out(img, shape, i64::from))
        .collect()
}

/// Fisher–Yates shuffle with unbiased indices (rejection sampling).
pub(crate) fn shuffle(idx: &mut [usize], rng: &mut ChaCha8Rng) {
    for i in (1..idx.len()).rev() {
        let bound = (i + 1) as u64;
        let zone = u64::MAX - u64::MAX % bound;
        let j = loop {
            let r = rng.next_u64();
            if r < zone {
                break (r % bound) as usize;
            }
        };
        idx.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_set_has_the_documented_shape() {
        let d = Digits::embedded();
        assert_eq!(d.len(), 1797);
        let mut per_class = [0usize; 10];
        d.labels.iter().for_each(|&l| per_class[l as usize] += 1);
        assert!(
            per_class.iter().all(|&n| (174..=183).contains(&n)),
            "{per_class:?}"
        );
        assert_eq!(&d.images[0][..8], &[0, 0, 5, 13, 9, 1, 0, 0]);
        assert_eq!(d.labels[..3], [0, 1, 2]);
    }

    #[test]
    fn split_is_seeded_disjoint_and_complete() {
        let d = Digits::embedded();
        let (train, test) = d.split(SPLIT_SEED);
        assert_eq!((train.len(), test.len()), (1437, 360));
        assert_eq!(d.split(SPLIT_SEED), (train.clone(), test.clone()));
        assert_ne!(d.split(SPLIT_SEED + 1).1, test);
        let mut all: Vec<([u8; 64], u8)> = train
            .images
            .iter()
            .chain(&test.images)
            .copied()
            .zip(train.labels.iter().chain(&test.labels).copied())
            .collect();
        let mut orig: Vec<([u8; 64], u8)> = d
            .images
            .iter()
            .copied()
            .zip(d.labels.iter().copied())
            .collect();
        all.sort();
        orig.sort();
        assert_eq!(all, orig);
    }

    #[test]
    fn corrupt_files_are_named_errors() {
        let e = Digits::parse_gz(b"plain text", "d.gz")
            .unwrap_err()
            .to_string();
        assert!(e.contains("d.gz") && e.contains("gzip"), "{e}");
        let cut = &DIGITS_CSV_GZ[..DIGITS_CSV_GZ.len() / 2];
        assert!(Digits::parse_gz(cut, "cut.gz").is_err());
        let mut gz = Vec::new();
        {
            use std::io::Write as _;
            let mut w = flate2::write::GzEncoder::new(&mut gz, flate2::Compression::fast());
            w.write_all(b"1,2,3\n").unwrap();
        }
        let e = Digits::parse_gz(&gz, "short.gz").unwrap_err().to_string();
        assert!(e.contains("line 1") && e.contains("3 fields"), "{e}");
    }
}
