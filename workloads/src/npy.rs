//! Input tensors from a NumPy `.npy` file: a user's calibration set for a model (NumPy's
//! format, version 1.0–3.0: the magic `\x93NUMPY`, a version, a little-endian header length
//! and a Python dict literal with `descr`, `fortran_order` and `shape`, then the raw array).
//!
//! The array is N inputs: shape `[N, …]` whose trailing dimensions hold as many elements as
//! one input (`[N, C, H, W]` for an image model, `[N, F]` for a vector). Element types:
//! little-endian f32 (`<f4`), f64 (`<f8`), f16 (`<f2`) and 8-bit integers (`|u1`, `|i1`),
//! in C order.

use ndarray::Array3;

use crate::error::WorkloadError;
use crate::net::Shape;

/// Most inputs a file may hold.
pub const MAX_INPUTS: usize = 1 << 16;

/// The N inputs of `shape` in the `.npy` bytes; `origin` (the file) is quoted in errors.
pub fn inputs(bytes: &[u8], origin: &str, shape: Shape) -> Result<Vec<Array3<f32>>, WorkloadError> {
    let bad = |why: String| WorkloadError::File {
        path: origin.to_owned(),
        why,
    };
    let (header, data) = split(bytes).map_err(&bad)?;
    let field = |key: &str| -> Result<&str, WorkloadError> {
        let at = header
            .find(&format!("'{key}'"))
            .ok_or_else(|| bad(format!("the .npy header has no '{key}' ({header})")))?;
        let rest = header[at + key.len() + 2..].trim_start();
        Ok(rest.strip_prefix(':').unwrap_or(rest).trim_start())
    };
    let descr = field("descr")?;
    let descr = descr
        .strip_prefix('\'')
        .and_then(|d| d.split('\'').next())
        .ok_or_else(|| bad(format!("unreadable descr in the .npy header ({header})")))?;
    let width = match descr {
        "<f4" => 4,
        "<f8" => 8,
        "<f2" => 2,
        "|u1" | "|i1" | "u1" | "i1" => 1,
        other => {
            return Err(bad(format!(
                "element type '{other}' is not supported (little-endian f4, f8, f2, or u1/i1)"
            )));
        }
    };
    if field("fortran_order")?.starts_with("True") {
        return Err(bad(
            "the array is in Fortran order; save it in C order (numpy.ascontiguousarray)".into(),
        ));
    }
    let dims_text = field("shape")?;
    let dims_text = dims_text
        .strip_prefix('(')
        .and_then(|s| s.split(')').next())
        .ok_or_else(|| bad(format!("unreadable shape in the .npy header ({header})")))?;
    let dims: Vec<usize> = dims_text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>())
        .collect::<Result<_, _>>()
        .map_err(|e| bad(format!("shape ({dims_text}): {e}")))?;
    let n = *dims
        .first()
        .ok_or_else(|| bad("the array is a scalar; it must hold N inputs, [N, …]".into()))?;
    let per: Option<usize> = dims[1..].iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    if per != Some(shape.len()) {
        return Err(bad(format!(
            "shape {dims:?}: each of its {n} inputs must hold {} elements (the model's input \
             {shape}), not {}",
            shape.len(),
            per.map_or("more than 2^64".to_owned(), |p| p.to_string())
        )));
    }
    if n == 0 || n > MAX_INPUTS {
        return Err(bad(format!(
            "shape {dims:?}: {n} inputs; 1..={MAX_INPUTS} are allowed"
        )));
    }
    let want = n * shape.len() * width;
    if data.len() != want {
        return Err(bad(format!(
            "the data holds {} bytes, shape {dims:?} of '{descr}' needs {want}",
            data.len()
        )));
    }
    let value = |c: &[u8]| -> f32 {
        match descr {
            "<f4" => f32::from_le_bytes(c.try_into().expect("4 bytes")),
            "<f8" => f64::from_le_bytes(c.try_into().expect("8 bytes")) as f32,
            "<f2" => crate::onnx::f16_to_f32(u16::from_le_bytes(c.try_into().expect("2 bytes"))),
            "|i1" | "i1" => c[0] as i8 as f32,
            _ => c[0] as f32,
        }
    };
    let values: Vec<f32> = data.chunks_exact(width).map(value).collect();
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(bad(format!(
            "element {i} (input {}) is {}; inputs must be finite",
            i / shape.len(),
            values[i]
        )));
    }
    Ok(values
        .chunks_exact(shape.len())
        .map(|v| Array3::from_shape_vec((shape.c, shape.h, shape.w), v.to_vec()).expect("sized"))
        .collect())
}

/// The header text and the data after it.
fn split(bytes: &[u8]) -> Result<(&str, &[u8]), String> {
    let rest = bytes
        .strip_prefix(b"\x93NUMPY")
        .ok_or("not a .npy file (no \\x93NUMPY magic)")?;
    let (major, rest) = rest.split_first().ok_or("cut short after the magic")?;
    let rest = rest.get(1..).ok_or("cut short after the version")?;
    let (len, rest) = match major {
        1 => {
            let l = rest.get(..2).ok_or("cut short in the header length")?;
            (u16::from_le_bytes([l[0], l[1]]) as usize, &rest[2..])
        }
        2 | 3 => {
            let l = rest.get(..4).ok_or("cut short in the header length")?;
            (
                u32::from_le_bytes(l.try_into().expect("4 bytes")) as usize,
                &rest[4..],
            )
        }
        v => return Err(format!(".npy version {v} is not supported (1 to 3 are)")),
    };
    let header = rest
        .get(..len)
        .ok_or_else(|| format!("the header of {len} bytes is cut short"))?;
    let header = std::str::from_utf8(header).map_err(|_| "the header is not text".to_owned())?;
    Ok((header, &rest[len..]))
}

/// The `.npy` bytes of `inputs` as `<f4` in C order, shape `[N, C, H, W]` (tests and
/// examples write calibration files with it).
pub fn to_bytes(inputs: &[Array3<f32>]) -> Vec<u8> {
    let (c, h, w) = inputs.first().map_or((0, 0, 0), Array3::dim);
    let mut header = format!(
        "{{'descr': '<f4', 'fortran_order': False, 'shape': ({}, {c}, {h}, {w}), }}",
        inputs.len()
    );
    // Magic (6) + version (2) + length (2) + header + newline, padded to 64 bytes.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for x in inputs {
        out.extend(x.iter().flat_map(|v| v.to_le_bytes()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `b` with the bytes of `from` replaced by those of `to` (of the same length).
    fn edit(b: &[u8], from: &str, to: &str) -> Vec<u8> {
        assert_eq!(from.len(), to.len());
        let at = b
            .windows(from.len())
            .position(|w| w == from.as_bytes())
            .expect("present");
        let mut out = b.to_vec();
        out[at..at + to.len()].copy_from_slice(to.as_bytes());
        out
    }

    #[test]
    fn round_trip_and_every_refusal_names_the_file() {
        let shape = Shape::new(2, 3, 1);
        let xs = vec![
            Array3::from_shape_fn((2, 3, 1), |(c, h, _)| (c * 3 + h) as f32 * 0.5),
            Array3::from_shape_fn((2, 3, 1), |(c, h, _)| -((c + h) as f32)),
        ];
        let bytes = to_bytes(&xs);
        assert_eq!(bytes.len() % 4, 0);
        assert_eq!(inputs(&bytes, "c.npy", shape).unwrap(), xs);
        // The same 6 elements per input seen as [N, 6].
        let flat = edit(&bytes, "(2, 2, 3, 1)", "(2, 6)      ");
        assert_eq!(inputs(&flat, "c.npy", shape).unwrap(), xs);
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"PK\x03\x04".to_vec(), "magic"),
            (bytes[..30].to_vec(), "cut short"),
            (bytes[..bytes.len() - 4].to_vec(), "needs 48"),
            (edit(&bytes, "<f4", ">f4"), "'>f4'"),
            (edit(&bytes, "False", "True "), "Fortran"),
        ];
        for (b, fragment) in cases {
            let e = inputs(&b, "c.npy", shape).unwrap_err().to_string();
            assert!(
                e.starts_with("c.npy: ") && e.contains(fragment),
                "{fragment}: {e}"
            );
        }
        let e = inputs(&bytes, "c.npy", Shape::new(3, 3, 1))
            .unwrap_err()
            .to_string();
        assert!(e.contains("must hold 9 elements"), "{e}");
        let mut nan = xs.clone();
        nan[1][[1, 2, 0]] = f32::NAN;
        let e = inputs(&to_bytes(&nan), "c.npy", shape)
            .unwrap_err()
            .to_string();
        assert!(e.contains("element 11 (input 1)"), "{e}");
    }
}
