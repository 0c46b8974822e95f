//! Tests of sweep planning: point seeds, zipped axes, ranges and logs, and id ranges.

use super::*;
use std::collections::BTreeSet;

#[test]
fn point_seeds_differ_and_are_stable() {
    let s: BTreeSet<u64> = (0..1000).map(|id| point_seed(7, id)).collect();
    assert_eq!(s.len(), 1000);
    assert_eq!(point_seed(7, 3), point_seed(7, 3));
    assert_ne!(point_seed(7, 3), point_seed(8, 3));
}

#[test]
fn mixed_radix_with_zip_groups() {
    let ax = |key: &str, n: usize, group: Option<&str>| Axis {
        key: key.into(),
        values: (0..n).map(|i| serde_json::json!(i)).collect(),
        group: group.map(String::from),
    };
    let axes = [
        ax("a", 2, None),
        ax("b", 3, Some("g")),
        ax("c", 3, Some("g")),
    ];
    let d = dims(&axes).unwrap();
    assert_eq!(d.len(), 2);
    let all: Vec<Vec<usize>> = (0..6).map(|id| indices(&d, 3, id)).collect();
    assert_eq!(all[0], [0, 0, 0]);
    assert_eq!(all[1], [0, 1, 1]);
    assert_eq!(all[3], [1, 0, 0]);
    assert_eq!(all[5], [1, 2, 2]);
    let bad = [ax("b", 3, Some("g")), ax("c", 2, Some("g"))];
    assert!(dims(&bad).unwrap_err().contains("equal lengths"));
}

#[test]
fn ranges_and_logs_expand_exactly() {
    let spec = |t: &str| -> AxisSpec { toml::from_str(&format!("key = \"k\"\n{t}")).unwrap() };
    let v = expand_axis(
        &spec("range = { start = 0.1, stop = 0.5, step = 0.1 }"),
        "x",
    )
    .unwrap();
    assert_eq!(
        v,
        [0.1, 0.2, 0.3, 0.4, 0.5].map(toml::Value::Float).to_vec()
    );
    let v = expand_axis(&spec("range = { start = 2, stop = 8, step = 2 }"), "x").unwrap();
    assert_eq!(v, [2, 4, 6, 8].map(toml::Value::Integer).to_vec());
    let v = expand_axis(&spec("log = { start = 128, stop = 1024, num = 4 }"), "x").unwrap();
    assert_eq!(v, [128, 256, 512, 1024].map(toml::Value::Integer).to_vec());
    let v = expand_axis(&spec("log = { start = 1e-3, stop = 1.0, num = 4 }"), "x").unwrap();
    assert_eq!(v, [1e-3, 1e-2, 1e-1, 1.0].map(toml::Value::Float).to_vec());
    let e = expand_axis(
        &spec("values = [1]\nlog = { start = 1, stop = 2, num = 2 }"),
        "x",
    );
    assert!(e.unwrap_err().contains("exactly one"));
    let e = expand_axis(&spec("range = { start = 3, stop = 1, step = 1 }"), "x");
    assert!(e.unwrap_err().contains("stop ≥ start"));
}

#[test]
fn ranges_print_compactly() {
    assert_eq!(ranges(&[0, 1, 2, 5, 7, 8]), "0-2,5,7-8");
    assert_eq!(ranges(&[]), "");
}
