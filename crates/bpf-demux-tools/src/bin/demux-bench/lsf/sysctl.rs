//! Reading and setting a network sysctl inside the private namespace only.
//!
//! `net.core.optmem_max` is per network namespace on the kernels this
//! runs on; before setting it the value is checked to exist inside the
//! namespace, and after setting it the host's value (read through the start-up
//! namespace, that of this process's main thread) must be unchanged, or the value is put back and the run stops.

use std::process::Command;

fn run(cmd: &mut Command) -> Result<String, String> {
    let o = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if !o.status.success() {
        return Err(format!(
            "{cmd:?}: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&o.stdout).trim().to_string())
}

fn parse(key: &str, s: &str) -> Result<u64, String> {
    s.parse().map_err(|_| format!("{key}: not a number: `{s}`"))
}

/// `key`'s value inside namespace `ns`.
pub fn get_in_ns(ns: &str, key: &str) -> Result<u64, String> {
    let s = run(Command::new("ip").args(["netns", "exec", ns, "sysctl", "-n", key]))?;
    parse(key, &s)
}

/// The namespace this process started in (its main thread never leaves it).
fn host_ns() -> String {
    format!("--net=/proc/{}/ns/net", std::process::id())
}

/// `key`'s value in the namespace this process started in.
pub fn get_host(key: &str) -> Result<u64, String> {
    let s = run(Command::new("nsenter").args([host_ns().as_str(), "sysctl", "-n", key]))?;
    parse(key, &s)
}

/// Sets `key` inside namespace `ns`, and checks the host did not change.
pub fn set_in_ns(ns: &str, key: &str, value: u64) -> Result<(), String> {
    let host = get_host(key)?;
    let assignment = format!("{key}={value}");
    run(Command::new("ip").args(["netns", "exec", ns, "sysctl", "-qw", &assignment]))?;
    let after = get_host(key)?;
    if after != host {
        let restore = format!("{key}={host}");
        let _ = run(Command::new("nsenter").args([host_ns().as_str(), "sysctl", "-qw", &restore]));
        return Err(format!(
            "{key} is not per network namespace on this kernel (setting it in {ns} changed the host's); put back to {host}"
        ));
    }
    if get_in_ns(ns, key)? != value {
        return Err(format!(
            "{key}: set to {value} in {ns}, but it reads otherwise"
        ));
    }
    Ok(())
}
