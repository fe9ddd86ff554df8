//! Expression benchmarks: `JSON(input,"email")` and a 20-path profile on a 1 KB and a 1 MB body,
//! as ratios to a typed single-field serde parse of the same body measured in the same run.

mod common;

use std::hint::black_box;

use bellhop::expr::{Document, EmptyEnvironment, Expression, ExtractionPlan, Scope};
use criterion::{BenchmarkId, Criterion, Throughput};

#[derive(serde::Deserialize)]
struct EmailOnly<'a> {
    #[serde(borrow)]
    email: std::borrow::Cow<'a, str>,
}

fn compile(paths: &[&str]) -> (Vec<Expression>, std::sync::Arc<ExtractionPlan>) {
    let expressions: Vec<Expression> = paths
        .iter()
        .map(|p| {
            Expression::compile(&format!("JSON(input, \"{p}\")")).unwrap_or_else(|e| panic!("{e}"))
        })
        .collect();
    let mut plan = ExtractionPlan::default();
    for e in &expressions {
        e.plan_into(&mut plan);
    }
    (expressions, plan.shared())
}

fn run(expressions: &[Expression], plan: &std::sync::Arc<ExtractionPlan>, body: &str) -> usize {
    let document = Document::new(body, plan.clone());
    let scope = Scope::new(&document, &EmptyEnvironment);
    expressions
        .iter()
        .map(|e| e.evaluate(&scope).map(|v| v.to_text().len()).unwrap_or(0))
        .sum()
}

fn benches(c: &mut Criterion) {
    let (one, one_plan) = compile(&["email"]);
    let (twenty, twenty_plan) = compile(&common::TWENTY_PATHS);
    for (label, size) in [("1KB", 1024), ("1MB", 1024 * 1024)] {
        let body = common::body(size);
        // Every path resolves on this body.
        assert!(run(&twenty, &twenty_plan, &body) > 0);
        let mut group = c.benchmark_group("expressions");
        group.throughput(Throughput::Bytes(body.len() as u64));
        if size > 4096 {
            group.sample_size(30);
        }
        group.bench_with_input(
            BenchmarkId::new("typed_single_field", label),
            &body,
            |b, body| {
                b.iter(|| {
                    let parsed: EmailOnly =
                        serde_json::from_str(black_box(body)).unwrap_or_else(|e| panic!("{e}"));
                    parsed.email.len()
                })
            },
        );
        group.bench_with_input(
            BenchmarkId::new("typed_twenty_fields", label),
            &body,
            |b, body| {
                b.iter(|| {
                    let parsed: common::Twenty =
                        serde_json::from_str(black_box(body)).unwrap_or_else(|e| panic!("{e}"));
                    parsed.email.len() + parsed.items.len()
                })
            },
        );
        group.bench_with_input(
            BenchmarkId::new("full_value_tree", label),
            &body,
            |b, body| {
                b.iter(|| {
                    let parsed: serde_json::Value =
                        serde_json::from_str(black_box(body)).unwrap_or_default();
                    parsed["email"].as_str().map(str::len)
                })
            },
        );
        group.bench_with_input(BenchmarkId::new("json_email", label), &body, |b, body| {
            b.iter(|| run(&one, &one_plan, black_box(body)))
        });
        group.bench_with_input(BenchmarkId::new("twenty_paths", label), &body, |b, body| {
            b.iter(|| run(&twenty, &twenty_plan, black_box(body)))
        });
        group.finish();
    }
}

fn main() {
    common::main_with(benches, report);
}

fn report() {
    println!("\nRatios to a typed single-field serde parse of the same body (same run; lower is better):");
    for label in ["1KB", "1MB"] {
        let Some(baseline) = common::mean_ns("expressions", "typed_single_field", label) else {
            println!("  {label}: no baseline estimate (filtered out?)");
            continue;
        };
        for case in [
            "json_email",
            "twenty_paths",
            "typed_twenty_fields",
            "full_value_tree",
        ] {
            if let Some(mean) = common::mean_ns("expressions", case, label) {
                println!(
                    "  {label:<4} {case:<16} {:>8.2}x   ({:.1} µs vs {:.1} µs)",
                    mean / baseline,
                    mean / 1000.0,
                    baseline / 1000.0
                );
            }
        }
    }
    println!("  target: twenty_paths at most 1.5x");
    if let (Some(typed), Some(ours)) = (
        common::mean_ns("expressions", "typed_twenty_fields", "1KB"),
        common::mean_ns("expressions", "twenty_paths", "1KB"),
    ) {
        println!(
            "  1KB twenty_paths vs a typed parse of the same twenty fields: {:.2}x",
            ours / typed
        );
    }
}
