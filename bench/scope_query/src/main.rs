//! What a `scope_query` of 10 terms adds to a verification: parsing it (done once per request, at
//! the HTTP edge) and evaluating it against a key's effective scopes, next to the `scopes` list
//! it replaces. Median of 9 rounds of 200,000 iterations each, in ns per verification.
//!
//! `scope-query-bench ir CASE N` runs one case N times and nothing else, for callgrind:
//! `bench/scope_query/ir.sh` takes the difference of two counts, so setup cancels out.

#[path = "../../../src/domain/scope.rs"]
#[allow(dead_code)]
mod scope;
#[path = "../../../src/domain/scope_query.rs"]
#[allow(dead_code)]
mod scope_query;

use std::hint::black_box;
use std::time::Instant;

use scope::{Scope, Scopes};
use scope_query::ScopeQuery;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ROUNDS: usize = 9;
const ITERATIONS: u32 = 200_000;

/// Median ns per call of `f` over the rounds.
fn median_ns(mut f: impl FnMut() -> bool) -> f64 {
    let mut rounds: Vec<f64> = (0..ROUNDS)
        .map(|_| {
            let started = Instant::now();
            for _ in 0..ITERATIONS {
                black_box(f());
            }
            started.elapsed().as_nanos() as f64 / f64::from(ITERATIONS)
        })
        .collect();
    rounds.sort_by(f64::total_cmp);
    rounds[ROUNDS / 2]
}

fn main() {
    // A key with 20 effective scopes (its own and its roles'), one of them a wildcard.
    let mut held: Vec<String> = (0..17).map(|i| format!("res{i}:read")).collect();
    held.extend(["orders:read".into(), "billing:*".into(), "g:h".into()]);
    let held = Scopes::parse(&held).unwrap();

    // 10 terms; granted (billing:read by billing:*, then the OR branches) and refused.
    let granted = "orders:read AND (billing:read OR admin:*) AND (g:h OR c:d OR e:f) \
                   AND (res3:read OR k:l) AND (res9:read OR m:n)";
    let refused = "orders:read AND (refunds:write OR admin:*) AND (g:h OR c:d OR e:f) \
                   AND (res3:read OR k:l) AND (x:y OR m:n)";
    let list = [
        "orders:read",
        "billing:read",
        "g:h",
        "res3:read",
        "res9:read",
        "res1:read",
        "res2:read",
        "res4:read",
        "res5:read",
        "res6:read",
    ];
    assert_eq!(granted.matches(':').count(), 10);
    assert!(ScopeQuery::parse(granted).unwrap().is_granted_by(&held));
    assert!(ScopeQuery::parse(refused).unwrap().missing(&held).is_some());

    let parsed = ScopeQuery::parse(granted).unwrap();
    // What a repeated query costs in `Verifier::scope_query`: a lookup of its text, then the
    // evaluation.
    let cache: moka::sync::Cache<String, std::sync::Arc<ScopeQuery>> =
        moka::sync::Cache::builder().max_capacity(1_000).build();
    cache.insert(granted.to_owned(), std::sync::Arc::new(parsed.clone()));
    let cases: [(&str, Box<dyn Fn() -> bool>); 6] = [
        (
            "eval_only",
            Box::new(|| black_box(&parsed).is_granted_by(&held)),
        ),
        (
            "cached_query_and_eval",
            Box::new(|| {
                cache
                    .get(black_box(granted))
                    .is_some_and(|q| q.is_granted_by(&held))
            }),
        ),
        (
            "parse_and_eval_granted",
            Box::new(|| {
                ScopeQuery::parse(black_box(granted))
                    .map(|q| q.is_granted_by(&held))
                    .unwrap_or(false)
            }),
        ),
        (
            "parse_and_missing_refused",
            Box::new(|| {
                ScopeQuery::parse(black_box(refused))
                    .map(|q| q.missing(&held).is_some())
                    .unwrap_or(false)
            }),
        ),
        (
            "scopes_list_of_10_parse_and_check",
            Box::new(|| {
                let required: Result<Vec<Scope>, _> =
                    black_box(list).iter().map(|s| Scope::parse(s)).collect();
                required.is_ok_and(|r| held.grants_all(&r))
            }),
        ),
        ("nothing", Box::new(|| black_box(true))),
    ];
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 4 && args[1] == "ir" {
        let n: u32 = args[3].parse().expect("N");
        let (_, case) = cases
            .iter()
            .find(|(name, _)| *name == args[2])
            .expect("a case name");
        for _ in 0..n {
            black_box(case());
        }
        return;
    }

    let parse_eval_granted = median_ns(|| {
        ScopeQuery::parse(black_box(granted))
            .map(|q| q.is_granted_by(&held))
            .unwrap_or(false)
    });
    let parse_eval_refused = median_ns(|| {
        ScopeQuery::parse(black_box(refused))
            .map(|q| q.missing(&held).is_some())
            .unwrap_or(false)
    });
    let eval_only = median_ns(|| black_box(&parsed).is_granted_by(&held));
    let cached = median_ns(|| {
        cache
            .get(black_box(granted))
            .is_some_and(|q| q.is_granted_by(&held))
    });
    let scopes_list = median_ns(|| {
        let required: Result<Vec<Scope>, _> =
            black_box(list).iter().map(|s| Scope::parse(s)).collect();
        required.is_ok_and(|r| held.grants_all(&r))
    });
    println!(
        "{{\"query_terms\": 10, \"held_scopes\": {}, \"parse_and_eval_granted_ns\": {parse_eval_granted:.0}, \
         \"parse_and_missing_refused_ns\": {parse_eval_refused:.0}, \"eval_only_ns\": {eval_only:.0}, \"cached_query_and_eval_ns\": {cached:.0}, \
         \"scopes_list_of_10_parse_and_check_ns\": {scopes_list:.0}}}",
        held.len()
    );
}
