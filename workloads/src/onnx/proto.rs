//! A minimal protobuf reader for the ONNX messages the importer needs (ModelProto, GraphProto,
//! NodeProto, AttributeProto, TensorProto, ValueInfoProto), following the field numbers of
//! `onnx.proto` (ONNX IR version 3+; Apache-2.0). Unknown fields are skipped, as protobuf
//! requires; every length is checked against the bytes left, so a corrupt or truncated file
//! gives an error naming the message and byte offset, never a panic or a huge allocation.

/// A decoding failure: what was being read and at which byte offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// Message and field being read.
    pub what: String,
    /// Byte offset in the file.
    pub offset: usize,
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at byte {}", self.what, self.offset)
    }
}

type R<T> = Result<T, DecodeError>;

/// A cursor over one message's bytes; `base` is the message's offset in the file.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
    msg: &'static str,
}

/// Protobuf wire types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wire {
    Varint,
    Fixed64,
    Bytes,
    Fixed32,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], base: usize, msg: &'static str) -> Reader<'a> {
        Reader {
            buf,
            pos: 0,
            base,
            msg,
        }
    }

    fn err(&self, what: &str) -> DecodeError {
        DecodeError {
            what: format!("{}: {what}", self.msg),
            offset: self.base + self.pos,
        }
    }

    fn done(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn varint(&mut self) -> R<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(self.err("truncated varint"));
            };
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(self.err("varint longer than 10 bytes"))
    }

    fn fixed<const N: usize>(&mut self) -> R<[u8; N]> {
        let end = self.pos + N;
        let Some(s) = self.buf.get(self.pos..end) else {
            return Err(self.err("truncated fixed-width value"));
        };
        self.pos = end;
        Ok(s.try_into().expect("slice of N bytes"))
    }

    /// A length-delimited field: its bytes and their offset in the file.
    fn bytes(&mut self) -> R<(&'a [u8], usize)> {
        let len = self.varint()?;
        let start = self.pos;
        let left = self.buf.len() - start;
        if len > left as u64 {
            return Err(self.err(&format!(
                "a field claims {len} bytes but only {left} remain (truncated file?)"
            )));
        }
        self.pos = start + len as usize;
        Ok((&self.buf[start..self.pos], self.base + start))
    }

    fn key(&mut self) -> R<(u64, Wire)> {
        let k = self.varint()?;
        let wire = match k & 7 {
            0 => Wire::Varint,
            1 => Wire::Fixed64,
            2 => Wire::Bytes,
            5 => Wire::Fixed32,
            w => return Err(self.err(&format!("unsupported wire type {w}"))),
        };
        let field = k >> 3;
        if field == 0 {
            return Err(self.err("field number 0"));
        }
        Ok((field, wire))
    }

    fn skip(&mut self, wire: Wire) -> R<()> {
        match wire {
            Wire::Varint => self.varint().map(drop),
            Wire::Fixed64 => self.fixed::<8>().map(drop),
            Wire::Fixed32 => self.fixed::<4>().map(drop),
            Wire::Bytes => self.bytes().map(drop),
        }
    }

    fn string(&mut self) -> R<String> {
        let (b, _) = self.bytes()?;
        String::from_utf8(b.to_vec()).map_err(|_| self.err("string is not UTF-8"))
    }

    /// A repeated varint field, packed or not.
    fn varints(&mut self, wire: Wire, out: &mut Vec<i64>) -> R<()> {
        if wire == Wire::Bytes {
            let (b, at) = self.bytes()?;
            let mut r = Reader::new(b, at, self.msg);
            while !r.done() {
                out.push(r.varint()? as i64);
            }
        } else {
            out.push(self.varint()? as i64);
        }
        Ok(())
    }

    /// A repeated fixed-width field (float, double), packed or not.
    fn fixed_values<const N: usize, T>(
        &mut self,
        wire: Wire,
        out: &mut Vec<T>,
        decode: fn([u8; N]) -> T,
    ) -> R<()> {
        if wire == Wire::Bytes {
            let (b, _) = self.bytes()?;
            if b.len() % N != 0 {
                return Err(self.err(&format!("packed values not a multiple of {N} bytes")));
            }
            out.extend(
                b.chunks_exact(N)
                    .map(|c| decode(c.try_into().expect("N bytes"))),
            );
        } else {
            out.push(decode(self.fixed::<N>()?));
        }
        Ok(())
    }

    fn sub(&mut self, msg: &'static str) -> R<Reader<'a>> {
        let (b, at) = self.bytes()?;
        Ok(Reader::new(b, at, msg))
    }
}

/// ModelProto: the fields the importer reads.
#[derive(Debug, Clone, Default)]
pub struct Model {
    /// Default-domain opset version (0 if absent).
    pub opset: i64,
    /// Producer name.
    pub producer: String,
    /// The graph.
    pub graph: Graph,
}

/// GraphProto.
#[derive(Debug, Clone, Default)]
pub struct Graph {
    /// Graph name.
    pub name: String,
    /// Nodes, in the topological order ONNX requires.
    pub nodes: Vec<Node>,
    /// Constant tensors.
    pub initializers: Vec<Tensor>,
    /// Graph inputs (may include initializers in old models).
    pub inputs: Vec<ValueInfo>,
    /// Graph outputs.
    pub outputs: Vec<ValueInfo>,
}

/// NodeProto.
#[derive(Debug, Clone, Default)]
pub struct Node {
    /// Node name (may be empty).
    pub name: String,
    /// Operator type.
    pub op_type: String,
    /// Operator domain ("" or "ai.onnx" is the default domain).
    pub domain: String,
    /// Input value names ("" marks an omitted optional input).
    pub inputs: Vec<String>,
    /// Output value names.
    pub outputs: Vec<String>,
    /// Attributes.
    pub attrs: Vec<Attr>,
}

impl Node {
    /// The attribute called `name`, if present.
    pub fn attr(&self, name: &str) -> Option<&Attr> {
        self.attrs.iter().find(|a| a.name == name)
    }

    /// An INT attribute, or `default` if absent.
    pub fn int(&self, name: &str, default: i64) -> i64 {
        self.attr(name).and_then(|a| a.i).unwrap_or(default)
    }

    /// An INTS attribute (empty if absent).
    pub fn ints(&self, name: &str) -> Vec<i64> {
        self.attr(name).map(|a| a.ints.clone()).unwrap_or_default()
    }
}

/// AttributeProto (the kinds the importer uses).
#[derive(Debug, Clone, Default)]
pub struct Attr {
    /// Name.
    pub name: String,
    /// FLOAT value.
    pub f: Option<f32>,
    /// INT value.
    pub i: Option<i64>,
    /// STRING value.
    pub s: Option<Vec<u8>>,
    /// TENSOR value.
    pub t: Option<Tensor>,
    /// FLOATS value.
    pub floats: Vec<f32>,
    /// INTS value.
    pub ints: Vec<i64>,
}

/// TensorProto.
#[derive(Debug, Clone, Default)]
pub struct Tensor {
    /// Name.
    pub name: String,
    /// Dimensions.
    pub dims: Vec<i64>,
    /// Element type (TensorProto.DataType).
    pub data_type: i32,
    /// Little-endian raw bytes.
    pub raw: Vec<u8>,
    /// float_data.
    pub floats: Vec<f32>,
    /// int32_data (also carries int8/uint8/int16/bool/float16 values).
    pub int32s: Vec<i64>,
    /// int64_data.
    pub int64s: Vec<i64>,
    /// double_data.
    pub doubles: Vec<f64>,
    /// True if the data lives in an external file (not supported).
    pub external: bool,
}

/// ValueInfoProto: name and tensor shape (None for a symbolic dimension).
#[derive(Debug, Clone, Default)]
pub struct ValueInfo {
    /// Name.
    pub name: String,
    /// Dimensions; None where symbolic or absent.
    pub dims: Vec<Option<i64>>,
}

/// Decodes an ONNX file.
pub fn decode_model(buf: &[u8]) -> Result<Model, DecodeError> {
    let mut r = Reader::new(buf, 0, "ModelProto");
    let mut m = Model::default();
    let mut saw_graph = false;
    while !r.done() {
        match r.key()? {
            (7, Wire::Bytes) => {
                m.graph = graph(r.sub("GraphProto")?)?;
                saw_graph = true;
            }
            (2, Wire::Bytes) => m.producer = r.string()?,
            (8, Wire::Bytes) => {
                let mut o = r.sub("OperatorSetIdProto")?;
                let (mut domain, mut version) = (String::new(), 0);
                while !o.done() {
                    match o.key()? {
                        (1, Wire::Bytes) => domain = o.string()?,
                        (2, Wire::Varint) => version = o.varint()? as i64,
                        (_, w) => o.skip(w)?,
                    }
                }
                if domain.is_empty() || domain == "ai.onnx" {
                    m.opset = version;
                }
            }
            (_, w) => r.skip(w)?,
        }
    }
    if !saw_graph {
        return Err(DecodeError {
            what: "ModelProto: no graph (is this an ONNX model file?)".into(),
            offset: buf.len(),
        });
    }
    Ok(m)
}

fn graph(mut r: Reader<'_>) -> R<Graph> {
    let mut g = Graph::default();
    while !r.done() {
        match r.key()? {
            (1, Wire::Bytes) => g.nodes.push(node(r.sub("NodeProto")?)?),
            (2, Wire::Bytes) => g.name = r.string()?,
            (5, Wire::Bytes) => g.initializers.push(tensor(r.sub("TensorProto")?)?),
            (11, Wire::Bytes) => g.inputs.push(value_info(r.sub("ValueInfoProto")?)?),
            (12, Wire::Bytes) => g.outputs.push(value_info(r.sub("ValueInfoProto")?)?),
            (_, w) => r.skip(w)?,
        }
    }
    Ok(g)
}

fn node(mut r: Reader<'_>) -> R<Node> {
    let mut n = Node::default();
    while !r.done() {
        match r.key()? {
            (1, Wire::Bytes) => n.inputs.push(r.string()?),
            (2, Wire::Bytes) => n.outputs.push(r.string()?),
            (3, Wire::Bytes) => n.name = r.string()?,
            (4, Wire::Bytes) => n.op_type = r.string()?,
            (5, Wire::Bytes) => n.attrs.push(attr(r.sub("AttributeProto")?)?),
            (7, Wire::Bytes) => n.domain = r.string()?,
            (_, w) => r.skip(w)?,
        }
    }
    Ok(n)
}

fn attr(mut r: Reader<'_>) -> R<Attr> {
    let mut a = Attr::default();
    while !r.done() {
        match r.key()? {
            (1, Wire::Bytes) => a.name = r.string()?,
            (2, Wire::Fixed32) => a.f = Some(f32::from_le_bytes(r.fixed::<4>()?)),
            (3, Wire::Varint) => a.i = Some(r.varint()? as i64),
            (4, Wire::Bytes) => a.s = Some(r.bytes()?.0.to_vec()),
            (5, Wire::Bytes) => a.t = Some(tensor(r.sub("TensorProto")?)?),
            (7, w) => r.fixed_values(w, &mut a.floats, f32::from_le_bytes)?,
            (8, w) => r.varints(w, &mut a.ints)?,
            (_, w) => r.skip(w)?,
        }
    }
    Ok(a)
}

fn tensor(mut r: Reader<'_>) -> R<Tensor> {
    let mut t = Tensor::default();
    while !r.done() {
        match r.key()? {
            (1, w) => r.varints(w, &mut t.dims)?,
            (2, Wire::Varint) => t.data_type = r.varint()? as i32,
            (4, w) => r.fixed_values(w, &mut t.floats, f32::from_le_bytes)?,
            (5, w) => r.varints(w, &mut t.int32s)?,
            (7, w) => r.varints(w, &mut t.int64s)?,
            (8, Wire::Bytes) => t.name = r.string()?,
            (9, Wire::Bytes) => t.raw = r.bytes()?.0.to_vec(),
            (10, w) => r.fixed_values(w, &mut t.doubles, f64::from_le_bytes)?,
            (13, Wire::Bytes) => {
                t.external = true;
                r.skip(Wire::Bytes)?;
            }
            (14, Wire::Varint) => t.external |= r.varint()? == 1,
            (_, w) => r.skip(w)?,
        }
    }
    Ok(t)
}

fn value_info(mut r: Reader<'_>) -> R<ValueInfo> {
    let mut v = ValueInfo::default();
    while !r.done() {
        match r.key()? {
            (1, Wire::Bytes) => v.name = r.string()?,
            (2, Wire::Bytes) => {
                // TypeProto.tensor_type (1) → TypeProto.Tensor.shape (2) → dim (1).
                let mut ty = r.sub("TypeProto")?;
                while !ty.done() {
                    match ty.key()? {
                        (1, Wire::Bytes) => {
                            let mut tt = ty.sub("TypeProto.Tensor")?;
                            while !tt.done() {
                                match tt.key()? {
                                    (2, Wire::Bytes) => {
                                        let mut sh = tt.sub("TensorShapeProto")?;
                                        while !sh.done() {
                                            match sh.key()? {
                                                (1, Wire::Bytes) => {
                                                    v.dims.push(dimension(sh.sub("Dimension")?)?)
                                                }
                                                (_, w) => sh.skip(w)?,
                                            }
                                        }
                                    }
                                    (_, w) => tt.skip(w)?,
                                }
                            }
                        }
                        (_, w) => ty.skip(w)?,
                    }
                }
            }
            (_, w) => r.skip(w)?,
        }
    }
    Ok(v)
}

fn dimension(mut r: Reader<'_>) -> R<Option<i64>> {
    let mut d = None;
    while !r.done() {
        match r.key()? {
            (1, Wire::Varint) => d = Some(r.varint()? as i64),
            (_, w) => r.skip(w)?,
        }
    }
    Ok(d)
}

/// Writers for tests: build small ONNX files by hand (and corrupt them).
#[cfg(test)]
pub mod write {
    /// Appends a varint.
    pub fn varint(out: &mut Vec<u8>, mut v: u64) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }

    /// Appends a varint field.
    pub fn int(out: &mut Vec<u8>, field: u64, v: i64) {
        varint(out, field << 3);
        varint(out, v as u64);
    }

    /// Appends a length-delimited field.
    pub fn bytes(out: &mut Vec<u8>, field: u64, b: &[u8]) {
        varint(out, field << 3 | 2);
        varint(out, b.len() as u64);
        out.extend_from_slice(b);
    }
}

#[cfg(test)]
mod tests {
    use super::write::*;
    use super::*;

    #[test]
    fn reads_a_hand_written_model_and_skips_unknown_fields() {
        let mut t = Vec::new();
        int(&mut t, 1, 2);
        int(&mut t, 1, 3);
        int(&mut t, 2, 1);
        bytes(&mut t, 8, b"w");
        let raw: Vec<u8> = (0..6).flat_map(|i| (i as f32).to_le_bytes()).collect();
        bytes(&mut t, 9, &raw);
        let mut n = Vec::new();
        bytes(&mut n, 1, b"x");
        bytes(&mut n, 1, b"w");
        bytes(&mut n, 2, b"y");
        bytes(&mut n, 4, b"MatMul");
        int(&mut n, 99, 7); // unknown field
        let mut g = Vec::new();
        bytes(&mut g, 1, &n);
        bytes(&mut g, 5, &t);
        let mut m = Vec::new();
        int(&mut m, 1, 7);
        bytes(&mut m, 7, &g);
        let model = decode_model(&m).unwrap();
        assert_eq!(model.graph.nodes[0].op_type, "MatMul");
        assert_eq!(model.graph.nodes[0].inputs, ["x", "w"]);
        assert_eq!(model.graph.initializers[0].dims, [2, 3]);
        assert_eq!(model.graph.initializers[0].raw.len(), 24);
    }

    #[test]
    fn truncation_and_garbage_are_errors_with_offsets() {
        let mut g = Vec::new();
        bytes(&mut g, 2, b"graph-name");
        let mut m = Vec::new();
        bytes(&mut m, 7, &g);
        for cut in 1..m.len() {
            let e = decode_model(&m[..cut]).unwrap_err();
            assert!(e.offset <= cut, "{e}");
        }
        assert!(decode_model(b"").unwrap_err().what.contains("no graph"));
        let e = decode_model(&[0xff; 16]).unwrap_err();
        assert!(e.what.contains("ModelProto"), "{e}");
        // A length far beyond the file is refused before any allocation.
        let mut huge = Vec::new();
        varint(&mut huge, 7 << 3 | 2);
        varint(&mut huge, 1 << 40);
        assert!(decode_model(&huge).unwrap_err().what.contains("remain"));
    }
}
