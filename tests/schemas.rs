//! Every JSON a command prints or writes conforms to its committed schema in `docs/schema/`:
//! each object's keys are the schema's properties (none missing that is required, none that
//! is not declared), and each value has the declared type. A small structural checker:
//! enough for the shapes schemars generates (objects, maps, arrays, tuples, `$ref`,
//! `anyOf`/`oneOf`, nullable types, constants and string enums).

use crate::common::{arg, cram, json, scratch};
use serde_json::{Value, json};

fn schema(name: &str) -> Value {
    let path = format!("{}/docs/schema/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// The problems of `v` against `s` (empty when it conforms), each with its JSON path.
fn check(v: &Value, s: &Value, root: &Value, at: &str, out: &mut Vec<String>) {
    if let Some(r) = s.get("$ref").and_then(Value::as_str) {
        let name = r.trim_start_matches("#/$defs/");
        return check(v, &root["$defs"][name], root, at, out);
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(alts) = s.get(key).and_then(Value::as_array) {
            let fits = alts.iter().any(|alt| {
                let mut e = Vec::new();
                check(v, alt, root, at, &mut e);
                e.is_empty()
            });
            if !fits {
                out.push(format!("{at}: {v} fits none of {key}"));
            }
            return;
        }
    }
    if let Some(c) = s.get("const") {
        if v != c {
            out.push(format!("{at}: {v} is not the constant {c}"));
        }
        return;
    }
    if let Some(e) = s.get("enum").and_then(Value::as_array) {
        if !e.contains(v) {
            out.push(format!("{at}: {v} is not one of {e:?}"));
        }
        return;
    }
    let types: Vec<&str> = match s.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => return, // any value
    };
    let kind = match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_u64() || n.is_i64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    if !types
        .iter()
        .any(|t| *t == kind || (*t == "number" && kind == "integer"))
    {
        out.push(format!("{at}: a {kind}, the schema says {types:?}"));
        return;
    }
    match v {
        Value::Object(map) => {
            let props = s.get("properties").and_then(Value::as_object);
            let extra = s.get("additionalProperties");
            for (k, x) in map {
                match (props.and_then(|p| p.get(k)), extra) {
                    (Some(ps), _) => check(x, ps, root, &format!("{at}.{k}"), out),
                    (None, Some(es)) if es.is_object() => {
                        check(x, es, root, &format!("{at}.{k}"), out)
                    }
                    (None, Some(Value::Bool(false))) | (None, None) if props.is_some() => {
                        out.push(format!("{at}.{k}: not declared in the schema"))
                    }
                    _ => {}
                }
            }
            for r in s
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let r = r.as_str().unwrap();
                if !map.contains_key(r) {
                    out.push(format!("{at}.{r}: required but missing"));
                }
            }
        }
        Value::Array(items) => {
            let tuple = s.get("prefixItems").and_then(Value::as_array);
            for (i, x) in items.iter().enumerate() {
                let is = tuple.and_then(|t| t.get(i)).or_else(|| s.get("items"));
                if let Some(is) = is {
                    check(x, is, root, &format!("{at}[{i}]"), out);
                }
            }
        }
        _ => {}
    }
}

fn conforms(v: &Value, name: &str) {
    let s = schema(name);
    let mut problems = Vec::new();
    check(v, &s, &s, "$", &mut problems);
    assert!(problems.is_empty(), "{name}:\n{}", problems.join("\n"));
}

/// The checker itself finds a missing key, an undeclared key and a wrong type.
#[test]
fn the_checker_finds_what_does_not_conform() {
    let s = schema("zoo.schema.json");
    let good = json!([{"name": "a", "description": "b", "input": "1x1x1", "layers": 1, "macs": 2, "params": 3}]);
    let mut e = Vec::new();
    check(&good, &s, &s, "$", &mut e);
    assert!(e.is_empty(), "{e:?}");
    for bad in [
        json!([{"name": "a", "description": "b", "input": "1", "layers": 1, "macs": 2}]),
        json!([{"name": "a", "description": "b", "input": "1", "layers": 1, "macs": 2, "params": 3, "x": 0}]),
        json!([{"name": "a", "description": "b", "input": "1", "layers": 1.5, "macs": 2, "params": 3}]),
    ] {
        let mut e = Vec::new();
        check(&bad, &s, &s, "$", &mut e);
        assert!(!e.is_empty(), "{bad} passed");
    }
}

/// What `--json` prints, for every command that prints a record, in the modes that change
/// its shape (functional and analytical, with and without faults, one layer and all).
#[test]
fn every_printed_record_conforms_to_its_schema() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["kernel", "add", "--bits", "8", "--lanes", "2048", "--json"],
            "kernel.schema.json",
        ),
        (
            &[
                "kernel",
                "mul",
                "--bits",
                "4",
                "--lanes",
                "512",
                "--error-rate",
                "0.05",
                "--json",
            ],
            "kernel.schema.json",
        ),
        (
            &[
                "kernel",
                "xor",
                "--bits",
                "4",
                "--mode",
                "analytical",
                "--gate-set",
                "nand",
                "--json",
            ],
            "kernel.schema.json",
        ),
        (&["map", "--json"], "map.schema.json"),
        (
            &[
                "map",
                "configs/resnet20-w4-sparse.toml",
                "--layer",
                "3",
                "--json",
            ],
            "map.schema.json",
        ),
        (
            &[
                "simulate",
                "digits-mlp",
                "--images",
                "8",
                "--error-rates",
                "0.01",
                "--json",
            ],
            "simulate.schema.json",
        ),
        (
            &["simulate", "lenet5", "--mode", "analytical", "--json"],
            "simulate.schema.json",
        ),
        (
            &["gates", "--device", "she-projected", "--json"],
            "gates.schema.json",
        ),
        (
            &["inspect", "digits-mlp-int4", "--json"],
            "inspect.schema.json",
        ),
        (&["inspect", "resnet20", "--json"], "inspect.schema.json"),
        (&["models", "--json"], "zoo.schema.json"),
        (&["calibrate", "--json"], "calibration.schema.json"),
    ];
    for (args, name) in cases {
        let o = cram(args);
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        conforms(&json(&o), name);
    }
}

/// A run folder's `report.json` and `manifest.json` conform too.
#[test]
fn a_run_folder_conforms_to_its_schemas() {
    let d = scratch("schemas-run");
    let o = cram(&["run", "--mode", "analytical", "--out", arg(&d)]);
    assert!(o.status.success());
    let run = std::fs::read_dir(&d)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let read = |f: &str| -> Value {
        serde_json::from_str(&std::fs::read_to_string(run.join(f)).unwrap()).unwrap()
    };
    conforms(&read("report.json"), "report.schema.json");
    conforms(&read("manifest.json"), "manifest.schema.json");
}
