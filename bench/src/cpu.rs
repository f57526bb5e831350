//! Where the CPU time of a measured window went: this process, the PostgreSQL server (the
//! postmaster and its backends) and the AWS emulator (moto), read from `/proc`.
//!
//! On one machine the three share the cores, so a request that costs the emulator CPU slows
//! the function's own loop; on Lambda the services run elsewhere. Splitting the time shows
//! how much of a gap between a handler and its baseline is the handler's own work.

use std::path::{Path, PathBuf};

/// Linux reports process times in these ticks per second (`USER_HZ`) on every architecture
/// Lambda runs.
const TICKS_PER_SEC: f64 = 100.0;

/// Cumulative CPU seconds, user plus system.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cpu {
    pub own: f64,
    /// The part of `own` spent in the kernel on this process's behalf (system time): sockets,
    /// wake-ups, scheduling, page faults.
    pub own_kernel: f64,
    pub postgres: f64,
    pub emulator: f64,
}

impl Cpu {
    /// CPU seconds used between `earlier` and `self`.
    pub fn since(self, earlier: Cpu) -> Cpu {
        Cpu {
            own: self.own - earlier.own,
            own_kernel: self.own_kernel - earlier.own_kernel,
            postgres: self.postgres - earlier.postgres,
            emulator: self.emulator - earlier.emulator,
        }
    }

    /// The sum of two windows' use.
    pub fn plus(self, other: Cpu) -> Cpu {
        Cpu {
            own: self.own + other.own,
            own_kernel: self.own_kernel + other.own_kernel,
            postgres: self.postgres + other.postgres,
            emulator: self.emulator + other.emulator,
        }
    }

    /// The same, in milliseconds per one of `requests`.
    pub fn per_request_ms(self, requests: f64) -> Cpu {
        let per = |s: f64| s * 1000.0 / requests.max(1.0);
        Cpu {
            own: per(self.own),
            own_kernel: per(self.own_kernel),
            postgres: per(self.postgres),
            emulator: per(self.emulator),
        }
    }
}

fn state_dir() -> PathBuf {
    std::env::var_os("LECTERN_STATE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::workspace_root().join(".local"))
}

fn pid_in(file: &Path) -> Option<u32> {
    std::fs::read_to_string(file)
        .ok()?
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()
}

/// `(ppid, utime + stime, stime, cutime + cstime)` in ticks, from `/proc/<pid>/stat`.
fn stat(pid: &str) -> Option<(u32, u64, u64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: the fields follow the last `)`.
    let fields: Vec<&str> = text[text.rfind(')')? + 2..].split(' ').collect();
    let n = |i: usize| fields.get(i)?.parse::<u64>().ok();
    // After the name: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14).
    Some((
        fields.get(1)?.parse().ok()?,
        n(11)? + n(12)?,
        n(12)?,
        n(13)? + n(14)?,
    ))
}

/// The CPU time each group has used so far. A group whose process is not found (another
/// machine's PostgreSQL, no moto) counts zero.
pub fn sample() -> Cpu {
    let state = state_dir();
    let postmaster = pid_in(&state.join("pg/data/postmaster.pid"));
    let moto = pid_in(&state.join("moto.pid"));
    let own = std::process::id();
    let mut cpu = Cpu::default();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return cpu;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let Some((ppid, ticks, kernel, children)) = stat(pid) else {
            continue;
        };
        let pid: u32 = pid.parse().unwrap_or(0);
        let seconds = ticks as f64 / TICKS_PER_SEC;
        if pid == own {
            cpu.own += seconds;
            cpu.own_kernel += kernel as f64 / TICKS_PER_SEC;
        } else if Some(pid) == postmaster {
            // Backends that have exited are counted in the postmaster's children's time.
            cpu.postgres += seconds + children as f64 / TICKS_PER_SEC;
        } else if Some(ppid) == postmaster {
            cpu.postgres += seconds;
        } else if Some(pid) == moto || Some(ppid) == moto {
            cpu.emulator += seconds;
        }
    }
    cpu
}
