//! Latency percentiles and throughput of one run.

use std::time::{Duration, Instant};

pub struct Summary {
    pub ops: usize,
    pub errors: usize,
    pub elapsed: Duration,
    pub p50: Duration,
    pub p99: Duration,
    /// CPU time the run cost, over the measured window (see [`CpuWindow`]).
    pub cpu: CpuUse,
}

impl Summary {
    pub fn new(
        mut latencies: Vec<Duration>,
        errors: usize,
        elapsed: Duration,
        cpu: CpuUse,
    ) -> Self {
        latencies.sort_unstable();
        let pct = |p: f64| -> Duration {
            if latencies.is_empty() {
                return Duration::ZERO;
            }
            let i = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
            latencies[i]
        };
        Self {
            ops: latencies.len(),
            errors,
            elapsed,
            p50: pct(0.50),
            p99: pct(0.99),
            cpu,
        }
    }

    /// Microseconds of CPU, summed over all cores, per completed operation.
    pub fn cpu_per_op(&self, cpu: Duration) -> f64 {
        cpu.as_secs_f64() * 1e6 / self.ops.max(1) as f64
    }

    /// Rate, p50 and p99 latency, errors, and CPU per operation of the machine and of the
    /// service's process: the columns of a service's side of a table row.
    pub fn service_columns(&self) -> String {
        format!(
            "{:>9.0} {:>7.2} {:>7.2} {:>6} {:>8.0} {:>8.0}",
            self.per_second(),
            ms(self.p50),
            ms(self.p99),
            self.errors,
            self.cpu_per_op(self.cpu.machine),
            self.cpu_per_op(self.cpu.process),
        )
    }

    pub fn per_second(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// CPU time spent during a measured window: by the whole machine (every process, user and
/// system, so the database, NATS and the load generator itself count) and by one process.
/// Throughput on a shared box moves ±10% run to run; CPU per operation moves much less, so it
/// is the figure to compare changes by.
#[derive(Clone, Copy, Default)]
pub struct CpuUse {
    pub machine: Duration,
    pub process: Duration,
}

/// Samples `/proc` at the start and the end of a measured window, on its own task.
pub struct CpuWindow(tokio::task::JoinHandle<CpuUse>);

impl CpuWindow {
    /// `pid`: the process to report on its own (the service under test), if any.
    pub fn spawn(from: Instant, to: Instant, pid: Option<u32>) -> Self {
        Self(tokio::spawn(async move {
            tokio::time::sleep_until(from.into()).await;
            let (m0, p0) = (machine_ticks(), pid.map_or(0, process_ticks));
            tokio::time::sleep_until(to.into()).await;
            let (m1, p1) = (machine_ticks(), pid.map_or(0, process_ticks));
            CpuUse {
                machine: ticks(m1.saturating_sub(m0)),
                process: ticks(p1.saturating_sub(p0)),
            }
        }))
    }

    pub async fn finish(self) -> CpuUse {
        self.0.await.unwrap_or_default()
    }
}

/// `/proc` counts in USER_HZ, which is 100 on every Linux this runs on.
fn ticks(n: u64) -> Duration {
    Duration::from_millis(n * 10)
}

/// Busy ticks of all CPUs: user, nice, system, irq and softirq (not idle or iowait, nor steal:
/// time the hypervisor gave to other guests, which would make the figure noisier).
fn machine_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(cpu) = stat.lines().next() else {
        return 0;
    };
    let f: Vec<u64> = cpu
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    [0, 1, 2, 5, 6].iter().filter_map(|&i| f.get(i)).sum()
}

/// utime + stime of one process (fields 14 and 15 of `/proc/<pid>/stat`).
fn process_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The command name may hold spaces; the fields after it start past the last ')'.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state), so fields 14 and 15 are at 11 and 12.
    f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
}
