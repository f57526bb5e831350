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
    let window = window(states, warmup, measure, step).await?;
    Ok((window.cell(measure), window.states))
}

/// What one measured window saw.
struct Window<S> {
    latencies: Samples,
    /// CPU seconds used inside the window.
    cpu: cpu::Cpu,
    states: Vec<S>,
}

impl<S> Window<S> {
    fn cell(&self, measure: Duration) -> Cell {
        Cell {
            rps: self.latencies.len() as f64 / measure.as_secs_f64(),
            p50: self.latencies.median(),
            p99: self.latencies.percentile(99.0),
            cpu: self.cpu.per_request_ms(self.latencies.len() as f64),
        }
    }
}

async fn window<S, F, Fut>(
    states: Vec<S>,
    warmup: Duration,
    measure: Duration,
    step: F,
) -> anyhow::Result<Window<S>>
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
    Ok(Window {
        latencies: all,
        cpu: cpu_window.await??,
        states,
    })
}

/// How many windows the measured side gets in [`compare`]; the baseline gets one more.
pub const ROUNDS: usize = 5;

/// A measured load against its baseline, windows alternating.
pub struct Comparison<B, M> {
    pub measured: Cell,
    pub baseline: Cell,
    /// Each round's measured req/s ÷ the mean of the baseline windows either side of it.
    pub rounds: Vec<f64>,
    pub base_states: Vec<B>,
    pub measured_states: Vec<M>,
}

/// Runs the baseline and the measured loads in alternating windows, baseline first and last
/// (B M B M … B, [`ROUNDS`] measured windows), each `warmup` + `measure` ÷ [`ROUNDS`]. A slow
/// second on a shared machine then lands in one window of either side, not in the whole of
/// one, and each round's ratio is taken between neighbours. The cells pool every window of a
/// side: requests ÷ time, percentiles of all latencies, CPU ÷ requests.
pub async fn compare<B, FB, FutB, M, FM, FutM>(
    base_states: Vec<B>,
    base: FB,
    measured_states: Vec<M>,
    measured: FM,
    warmup: Duration,
    measure: Duration,
) -> anyhow::Result<Comparison<B, M>>
where
    B: Send + 'static,
    FB: Fn(B) -> FutB + Clone + Send + Sync + 'static,
    FutB: Future<Output = anyhow::Result<B>> + Send + 'static,
    M: Send + 'static,
    FM: Fn(M) -> FutM + Clone + Send + Sync + 'static,
    FutM: Future<Output = anyhow::Result<M>> + Send + 'static,
{
    let each = measure / ROUNDS as u32;
    let mut pooled = [
        (Samples::default(), cpu::Cpu::default()),
        (Samples::default(), cpu::Cpu::default()),
    ];
    let mut add = |side: usize, w: &mut Samples, cpu: cpu::Cpu| {
        let (latencies, used) = &mut pooled[side];
        latencies.0.append(&mut w.0);
        *used = used.plus(cpu);
    };
    let mut w = window(base_states, warmup, each, base.clone()).await?;
    let mut before = w.cell(each).rps;
    add(0, &mut w.latencies, w.cpu);
    let (mut base_states, mut measured_states) = (w.states, measured_states);
    let mut rounds = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let mut m = window(measured_states, warmup, each, measured.clone()).await?;
        let rps = m.cell(each).rps;
        add(1, &mut m.latencies, m.cpu);
        measured_states = m.states;
        let mut b = window(base_states, warmup, each, base.clone()).await?;
        let after = b.cell(each).rps;
        add(0, &mut b.latencies, b.cpu);
        base_states = b.states;
        rounds.push(rps / ((before + after) / 2.0));
        before = after;
    }
    let cell = |(latencies, used): &(Samples, cpu::Cpu), windows: usize| Cell {
        rps: latencies.len() as f64 / (each.as_secs_f64() * windows as f64),
        p50: latencies.median(),
        p99: latencies.percentile(99.0),
        cpu: used.per_request_ms(latencies.len() as f64),
    };
    Ok(Comparison {
        baseline: cell(&pooled[0], ROUNDS + 1),
        measured: cell(&pooled[1], ROUNDS),
        rounds,
        base_states,
        measured_states,
    })
}

/// [`report`] for a [`compare`], with the spread of its rounds' ratios.
pub fn report_comparison<B, M>(
    path: &str,
    baseline_name: &str,
    concurrency: usize,
    c: &Comparison<B, M>,
) {
    report(path, baseline_name, concurrency, c.measured, c.baseline);
    let mut rounds = c.rounds.clone();
    rounds.sort_by(f64::total_cmp);
    let spread: Vec<String> = c.rounds.iter().map(|r| format!("{r:.3}")).collect();
    println!(
        "{:<26} ratio per round (B M B … B, {ROUNDS} rounds): {} (median {:.3})",
        "",
        spread.join(" "),
        rounds[rounds.len() / 2]
    );
    for (name, value) in [
        ("min", rounds[0]),
        ("median", rounds[rounds.len() / 2]),
        ("max", rounds[rounds.len() - 1]),
    ] {
        record(
            format!("round_ratio_{name}/{path}/c{concurrency}"),
            value,
            baseline_name,
        );
    }
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
        "{:<26} CPU ms/request: this process {:.3} (kernel {:.3}), PostgreSQL {:.3}, moto {:.3} | {:.3} ({:.3}), {:.3}, {:.3}",
        "",
        m.own,
        m.own_kernel,
        m.postgres,
        m.emulator,
        b.own,
        b.own_kernel,
        b.postgres,
        b.emulator
    );
    for (side, cell) in [("warm", measured), ("base", baseline)] {
        for (group, ms) in [
            ("own", cell.cpu.own),
            ("own_kernel", cell.cpu.own_kernel),
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
            own_kernel: (a.cpu.own_kernel + b.cpu.own_kernel) / 2.0,
            postgres: (a.cpu.postgres + b.cpu.postgres) / 2.0,
            emulator: (a.cpu.emulator + b.cpu.emulator) / 2.0,
        },
    }
}
