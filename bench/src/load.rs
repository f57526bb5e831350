//! The warm-throughput driver `warm` and `warm-content` share: concurrent request loops over
//! a measured window, and the comparison each prints and records.

use std::{
    future::Future,
    time::{Duration, Instant},
};

use crate::{Samples, cpu, record};

/// One cell of the table: a load at one concurrency.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cell {
    pub rps: f64,
    pub p50: f64,
    pub p99: f64,
    /// CPU milliseconds per request in the measured window: this process, PostgreSQL, moto.
    pub cpu: cpu::Cpu,
}

/// Runs `step` in `states.len()` concurrent loops for `warmup` + `measure`; counts what
/// completes inside the measured window. Answers the states as the loops left them (refresh
/// tokens move on).
pub async fn drive<S, F, Fut>(
    states: Vec<S>,
    warmup: Duration,
    measure: Duration,
    step: F,
) -> anyhow::Result<(Cell, Vec<S>)>
where
    S: Send + 'static,
    F: Fn(S) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<S>> + Send + 'static,
{
    let from = Instant::now() + warmup;
    let until = from + measure;
    let cpu_window = tokio::spawn(async move {
        tokio::time::sleep_until(from.into()).await;
        let start = tokio::task::spawn_blocking(cpu::sample).await?;
        tokio::time::sleep_until(until.into()).await;
        let end = tokio::task::spawn_blocking(cpu::sample).await?;
        Ok::<_, anyhow::Error>(end.since(start))
    });
    let loops: Vec<_> = states
        .into_iter()
        .map(|state| {
            let step = step.clone();
            tokio::spawn(async move {
                let mut state = state;
                let mut latencies = Samples::default();
                while Instant::now() < until {
                    let sent = Instant::now();
                    state = step(state).await?;
                    let done = Instant::now();
                    if done >= from && done < until {
                        latencies.push(done - sent);
                    }
                }
                Ok::<_, anyhow::Error>((latencies, state))
            })
        })
        .collect();
    let mut all = Samples::default();
    let mut states = Vec::new();
    for handle in loops {
        let (latencies, state) = handle.await??;
        all.0.extend(latencies.0);
        states.push(state);
    }
    let used = cpu_window.await??;
    Ok((
        Cell {
            rps: all.len() as f64 / measure.as_secs_f64(),
            p50: all.median(),
            p99: all.percentile(99.0),
            cpu: used.per_request_ms(all.len() as f64),
        },
        states,
    ))
}

/// What each comparison prints and records.
pub fn report(path: &str, baseline_name: &str, concurrency: usize, measured: Cell, baseline: Cell) {
    let ratio = measured.rps / baseline.rps;
    println!(
        "{path:<20} c={concurrency:<3} {:>9.1} req/s  p50 {:>7.2}ms  p99 {:>7.2}ms | {baseline_name:<14} {:>9.1} req/s  p50 {:>7.2}ms  p99 {:>7.2}ms | ratio {ratio:.3}",
        measured.rps, measured.p50, measured.p99, baseline.rps, baseline.p50, baseline.p99
    );
    let (m, b) = (measured.cpu, baseline.cpu);
    println!(
        "{:<26} CPU ms/request: this process {:.3}, PostgreSQL {:.3}, moto {:.3} | {:.3}, {:.3}, {:.3}",
        "", m.own, m.postgres, m.emulator, b.own, b.postgres, b.emulator
    );
    for (side, cell) in [("warm", measured), ("base", baseline)] {
        for (group, ms) in [
            ("own", cell.cpu.own),
            ("postgres", cell.cpu.postgres),
            ("aws", cell.cpu.emulator),
        ] {
            record(
                format!("{side}_cpu_ms/{group}/{path}/c{concurrency}"),
                ms,
                baseline_name,
            );
        }
        record(
            format!("{side}_rps/{path}/c{concurrency}"),
            cell.rps,
            baseline_name,
        );
        record(
            format!("{side}_p50_ms/{path}/c{concurrency}"),
            cell.p50,
            baseline_name,
        );
        record(
            format!("{side}_p99_ms/{path}/c{concurrency}"),
            cell.p99,
            baseline_name,
        );
    }
}

/// The mean of two baseline cells (baseline, measured, baseline).
pub fn mean(a: Cell, b: Cell) -> Cell {
    Cell {
        rps: (a.rps + b.rps) / 2.0,
        p50: (a.p50 + b.p50) / 2.0,
        p99: (a.p99 + b.p99) / 2.0,
        cpu: cpu::Cpu {
            own: (a.cpu.own + b.cpu.own) / 2.0,
            postgres: (a.cpu.postgres + b.cpu.postgres) / 2.0,
            emulator: (a.cpu.emulator + b.cpu.emulator) / 2.0,
        },
    }
}
