//! Real etcd members run from a bundle's files: each host's installed files (and etcd's
//! data) in a directory of its own, etcd started from the installed unit's ExecStart.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A process killed when dropped.
pub struct Daemon(Child);

impl Daemon {
    /// `program args` in `cwd`, its output to `log`; `package` is the Debian package that
    /// has it, named if it cannot start.
    pub fn spawn(program: &str, package: &str, args: &[String], cwd: &Path, log: &Path) -> Daemon {
        let log = std::fs::File::create(log).unwrap();
        let child = Command::new(program)
            .args(args)
            .current_dir(cwd)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {program} ({e}); install the Debian package `{package}` (scripts/test does)")
            });
        Daemon(child)
    }
}

impl Daemon {
    /// Kills it now (as dropping it does), where a scenario stops a process on purpose.
    pub fn stop(self) {}
}

/// The real HAProxy with the config `cfg`, in the foreground (`-db`), so the guard's PID is
/// HAProxy's and its state changes go to `log`.
pub fn start_haproxy(cfg: &Path, cwd: &Path, log: &Path) -> Daemon {
    let haproxy = if Path::new("/usr/sbin/haproxy").exists() {
        "/usr/sbin/haproxy"
    } else {
        "haproxy"
    };
    let args = ["-db", "-f", cfg.to_str().unwrap()].map(str::to_owned);
    Daemon::spawn(haproxy, "haproxy", &args, cwd, log)
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The machines: each host's installed files (and etcd's data) under `dir/machines/<host>`,
/// and the etcd processes running there.
pub struct Machines {
    pub dir: PathBuf,
    pub running: BTreeMap<String, Daemon>,
}

impl Machines {
    /// No machine yet; they live under `dir/machines/`.
    pub fn new(dir: &Path) -> Machines {
        Machines {
            dir: dir.to_owned(),
            running: BTreeMap::new(),
        }
    }

    pub fn root(&self, host: &str) -> PathBuf {
        self.dir.join("machines").join(host)
    }

    /// `tar -C hosts/<host> -cf - . | tar -C / -xpf -`, onto the machine's root.
    pub fn install(&self, bundle: &Path, host: &str) {
        let root = self.root(host);
        std::fs::create_dir_all(&root).unwrap();
        let status = Command::new("cp")
            .arg("-a")
            .arg(bundle.join("hosts").join(host).join("."))
            .arg(&root)
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// etcd from the installed unit's ExecStart, every absolute path moved under the
    /// machine's root.
    pub fn start_etcd(&mut self, host: &str) {
        let root = self.root(host);
        let unit = std::fs::read_to_string(root.join("etc/systemd/system/etcd.service"))
            .unwrap_or_else(|e| panic!("{host} has no installed etcd unit: {e}"));
        let joined = unit.replace("\\\n", " ");
        let exec = joined
            .lines()
            .find_map(|l| l.strip_prefix("ExecStart="))
            .unwrap();
        let mut words = exec.split_whitespace();
        assert_eq!(words.next(), Some("/usr/bin/etcd"));
        let args: Vec<String> = words
            .map(|arg| match arg.split_once("=/") {
                Some((flag, path)) => format!("{flag}={}/{path}", root.display()),
                None => arg.to_owned(),
            })
            .collect();
        let log = std::fs::File::create(self.dir.join(format!("{host}.log"))).unwrap();
        let child = Command::new("/usr/bin/etcd")
            .args(&args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("cannot start etcd: install the Debian package etcd-server");
        self.running.insert(host.to_owned(), Daemon(child));
    }

    pub fn stop_etcd(&mut self, host: &str) {
        assert!(
            self.running.remove(host).is_some(),
            "{host}'s etcd is not running"
        );
    }

    pub fn logs(&self) -> String {
        self.running
            .keys()
            .map(|host| {
                let log = std::fs::read_to_string(self.dir.join(format!("{host}.log")))
                    .unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(15).collect();
                format!(
                    "--- {host}\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// etcdctl with `bundle`'s admin certificates against `endpoints`.
pub fn etcdctl(bundle: &Path, endpoints: &[String], args: &[&str]) -> Result<String, String> {
    let out = Command::new("etcdctl")
        .current_dir(bundle)
        .arg(format!("--endpoints={}", endpoints.join(",")))
        .args([
            "--cacert=admin/etcd-ca.pem",
            "--cert=admin/etcd-healthcheck-client.pem",
            "--key=admin/etcd-healthcheck-client-key.pem",
            "--command-timeout=5s",
        ])
        .args(args)
        .output()
        .expect("cannot run etcdctl: install the Debian package etcd-client");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err(text)
    }
}

/// An etcd client and peer port free on every one of `addresses` (21000-29999, below
/// NodePorts), at `offset` (0-98) in a block of 100 that differs per process and per call,
/// so that suites and the tests of one suite running at once do not collide.
pub fn free_ports(addresses: &[&str], offset: u16) -> (u16, u16) {
    static NEXT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
    let start = (std::process::id() % 90) as u16
        + 7 * NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    (0..90)
        .map(|i| 21000 + 100 * ((start + i) % 90) + offset)
        .map(|base| (base, base + 1))
        .find(|(client, peer)| {
            addresses.iter().all(|address| {
                std::net::TcpListener::bind((*address, *client)).is_ok()
                    && std::net::TcpListener::bind((*address, *peer)).is_ok()
            })
        })
        .expect("no free ports")
}
