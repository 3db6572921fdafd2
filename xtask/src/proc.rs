//! Small helpers around child processes, ports and log files.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::signals::Interrupt;

/// Debian puts daemons in sbin, which is not on a normal user's PATH.
const SBIN_DIRS: &[&str] = &["/usr/local/sbin", "/usr/sbin", "/sbin"];

pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(SBIN_DIRS.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

pub fn is_root() -> bool {
    // /proc/self belongs to the effective user; no libc needed.
    std::fs::metadata("/proc/self").is_ok_and(|meta| meta.uid() == 0)
}

pub fn is_listening(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(300)).is_ok()
}

/// Runs a command to completion, failing with its stderr when it fails.
pub fn output(cmd: &mut Command) -> Result<Output> {
    let output = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {cmd:?}"))?;
    if !output.status.success() {
        bail!(
            "{cmd:?} failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(output)
}

/// Waits for a child, passing a Ctrl-C/SIGTERM on to it (once) so it can wind down.
pub fn wait(mut child: Child, interrupt: &Interrupt) -> Result<ExitStatus> {
    let mut forwarded = false;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if interrupt.is_set() && !forwarded {
            send_term(&child);
            forwarded = true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// As [`wait`], for a child started as the leader of its own process group
/// (`process_group(0)`): the interrupt goes to the whole group, as cargo passes no signal on to
/// the test binaries it runs, nor they to the services and servers they start (a CI timeout's
/// SIGTERM to xtask alone left them running). Returns once the whole group is gone, killing
/// what is left of it `grace` after the interrupt, so that nothing still runs when xtask then
/// stops PostgreSQL and NATS. A second interrupt kills the group before xtask exits
/// ([`crate::signals`]).
pub fn wait_group(mut child: Child, interrupt: &Interrupt, grace: Duration) -> Result<ExitStatus> {
    let group = child.id();
    crate::signals::set_child_group(group);
    let mut status = None;
    let mut terminated: Option<Instant> = None;
    let status = loop {
        if status.is_none() {
            status = child.try_wait()?;
        }
        match (status, terminated) {
            (Some(done), None) => break done,
            (_, None) if interrupt.is_set() => {
                signal_group(group, "TERM");
                terminated = Some(Instant::now());
            }
            (done, Some(at)) => {
                if let Some(done) = done.filter(|_| !group_alive(group)) {
                    break done;
                }
                if at.elapsed() > grace {
                    eprintln!("xtask: the tests did not stop within {grace:?}, killing them");
                    signal_group(group, "KILL");
                    break match done {
                        Some(done) => done,
                        None => child.wait()?,
                    };
                }
            }
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    crate::signals::set_child_group(0);
    Ok(status)
}

/// Sends `signal` to process group `group`.
pub fn signal_group(group: u32, signal: &str) {
    kill(signal, &format!("-{group}"));
}

/// Whether any process of group `group` is still there.
fn group_alive(group: u32) -> bool {
    kill("0", &format!("-{group}"))
}

fn send_term(child: &Child) {
    kill("TERM", &child.id().to_string());
}

/// `kill -s signal -- target` (a pid, or `-pgid` for a group); whether it reached a process.
/// std can only SIGKILL a child; the shell's `kill` builtin is always there.
fn kill(signal: &str, target: &str) -> bool {
    Command::new("sh")
        .args([
            "-c",
            "kill -s \"$1\" -- \"$2\" 2>/dev/null",
            "sh",
            signal,
            target,
        ])
        .status()
        .is_ok_and(|s| s.success())
}

/// SIGTERM, then SIGKILL if the process has not exited within `grace`.
pub fn terminate(child: &mut Child, name: &str, grace: Duration) {
    if matches!(child.try_wait(), Ok(Some(_))) {
        return;
    }
    send_term(child);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("xtask: {name} did not stop within {grace:?}, killing it");
    let _ = child.kill();
    let _ = child.wait();
}

/// The exit code a shell would report for this status (128 + signal when killed).
pub fn exit_code(status: ExitStatus) -> ExitCode {
    let code = status
        .code()
        .or_else(|| status.signal().map(|signal| 128 + signal))
        .unwrap_or(1);
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

/// A log file opened for a child's stdout and stderr.
pub fn log_file(path: &Path) -> Result<(File, File)> {
    let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let clone = file.try_clone()?;
    Ok((file, clone))
}

/// The last `lines` lines of a log, for error messages.
pub fn tail(path: &Path, lines: usize) -> String {
    let mut text = Vec::new();
    if File::open(path)
        .and_then(|mut f| f.read_to_end(&mut text))
        .is_err()
    {
        return format!("(no log at {})", path.display());
    }
    let text = String::from_utf8_lossy(&text);
    let all: Vec<&str> = text.lines().collect();
    let start = all.len().saturating_sub(lines);
    let mut out = format!("--- last lines of {} ---\n", path.display());
    for line in &all[start..] {
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Copies a child's output, line by line, to its log file and (optionally) our stdout.
pub fn forward(
    source: impl Read + Send + 'static,
    mut log: File,
    prefix: Option<String>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        use std::io::BufRead;
        let reader = std::io::BufReader::new(source);
        for line in reader.split(b'\n') {
            let Ok(line) = line else { break };
            let _ = log.write_all(&line);
            let _ = log.write_all(b"\n");
            if let Some(prefix) = &prefix {
                // Not println!: a closed stdout must not stop the log from being drained.
                let _ = writeln!(
                    std::io::stdout().lock(),
                    "{prefix} {}",
                    String::from_utf8_lossy(&line)
                );
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_last_lines() {
        let dir = std::env::temp_dir().join(format!("xtask-tail-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("log");
        std::fs::write(&path, "one\ntwo\nthree\n").unwrap();
        let tail = tail(&path, 2);
        assert!(tail.ends_with("two\nthree\n"), "{tail}");
        assert!(!tail.contains("one"), "{tail}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn exit_code_mirrors_the_child() {
        let status = Command::new("sh").args(["-c", "exit 3"]).status().unwrap();
        assert_eq!(exit_code(status), ExitCode::from(3));
    }
}
