//! A real PostgreSQL server on loopback for tests, from Debian's packages: `initdb` into a
//! temporary directory (as the unprivileged `postgres` user when the tests run as root, as CI
//! does), `pg_ctl start` on a free loopback port with SCRAM password auth (and, when asked, TLS
//! with a throwaway CA), stopped when the test ends — or, for the server a whole test binary
//! shares, by a watchdog when the test process exits. Used by the ledger's tests and bench and
//! the binary's tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The superuser tests connect as.
pub const USER: &str = "sostle";
/// Its password.
pub const PASSWORD: &str = "trial-and-error";

/// A running server.
#[derive(Debug)]
pub struct Pg {
    dir: tempfile::TempDir,
    bin: PathBuf,
    /// Run the server's programs as this user (tests running as root).
    run_as: Option<String>,
    /// The loopback port.
    pub port: u16,
    /// With TLS: the CA that signed the server's certificate.
    pub ca: Option<PathBuf>,
    shared: bool,
}

fn bindir() -> PathBuf {
    if let Some(d) = std::env::var_os("SOSTLE_PG_BIN") {
        return PathBuf::from(d);
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let d = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if d.join("initdb").exists() {
            return d;
        }
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    versions.sort();
    versions
        .pop()
        .expect("PostgreSQL's server programs (apt-get install postgresql; scripts/test.sh does)")
}

fn id(args: &[&str]) -> String {
    let out = Command::new("id").args(args).output().expect("id");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A loopback port nobody listens on (at the time of asking).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Pg {
    /// A server of its own for one test (stopped when dropped).
    pub fn start() -> Pg {
        Pg::init(false, false)
    }

    /// A server with TLS on (a throwaway CA in `ca`).
    pub fn start_tls() -> Pg {
        Pg::init(true, false)
    }

    /// The server every test of this process shares (a database each: [`Pg::database`]).
    pub fn shared() -> &'static Pg {
        static SHARED: OnceLock<Pg> = OnceLock::new();
        SHARED.get_or_init(|| {
            let pg = Pg::init(false, true);
            // Statics are never dropped: a watchdog stops the server once this process is gone
            // (it outlives us by design, so it is never waited for).
            let script = format!(
                "while kill -0 {} 2>/dev/null; do sleep 1; done; {}",
                std::process::id(),
                pg.command_line(&["stop", "-m", "immediate"])
            );
            #[allow(clippy::zombie_processes)]
            Command::new("sh")
                .args(["-c", &script])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("watchdog");
            pg
        })
    }

    fn init(tls: bool, shared: bool) -> Pg {
        let dir = tempfile::tempdir().unwrap();
        let bin = bindir();
        let run_as = (id(&["-u"]) == "0").then(|| {
            if Command::new("id")
                .arg("postgres")
                .output()
                .is_ok_and(|o| o.status.success())
            {
                "postgres".to_string()
            } else {
                "nobody".to_string()
            }
        });
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, PASSWORD).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
            if let Some(u) = &run_as {
                let uid: u32 = id(&["-u", u]).parse().unwrap();
                let gid: u32 = id(&["-g", u]).parse().unwrap();
                std::os::unix::fs::chown(&data, Some(uid), Some(gid)).unwrap();
                std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).unwrap();
                std::os::unix::fs::chown(&pwfile, Some(uid), Some(gid)).unwrap();
            }
        }
        let mut pg = Pg {
            dir,
            bin,
            run_as,
            port: free_port(),
            ca: None,
            shared,
        };
        pg.run(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                USER,
                &format!("--pwfile={}", pwfile.display()),
                "--auth-host=scram-sha-256",
                "--auth-local=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        let mut conf = format!(
            "listen_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = '{}'\nmax_connections = 60\n",
            pg.port,
            data.display()
        );
        if tls {
            let certs = pg.dir.path().join("certs");
            std::fs::create_dir(&certs).unwrap();
            certs_for(&certs);
            let key = data.join("server.key");
            std::fs::copy(certs.join("tls.pem"), data.join("server.crt")).unwrap();
            std::fs::copy(certs.join("tls.key"), &key).unwrap();
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
                if let Some(u) = &pg.run_as {
                    let uid: u32 = id(&["-u", u]).parse().unwrap();
                    let gid: u32 = id(&["-g", u]).parse().unwrap();
                    for f in ["server.key", "server.crt"] {
                        std::os::unix::fs::chown(data.join(f), Some(uid), Some(gid)).unwrap();
                    }
                }
            }
            conf.push_str("ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n");
            pg.ca = Some(certs.join("ca.pem"));
        }
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .unwrap();
        std::io::Write::write_all(&mut f, conf.as_bytes()).unwrap();
        pg.start_server();
        pg
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn command_line(&self, args: &[&str]) -> String {
        let mut words = vec![self.bin.join("pg_ctl").display().to_string(), "-D".into()];
        words.push(self.data().display().to_string());
        words.extend(args.iter().map(|a| a.to_string()));
        let line = words.join(" ");
        match &self.run_as {
            Some(u) => format!("runuser -u {u} -- {line}"),
            None => line,
        }
    }

    fn run(&self, program: &str, args: &[&str]) {
        let exe = self.bin.join(program);
        let mut cmd = match &self.run_as {
            Some(u) => {
                let mut c = Command::new("runuser");
                c.args(["-u", u, "--"]).arg(&exe);
                c
            }
            None => Command::new(&exe),
        };
        let out = cmd
            .args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("{program}: {e}"));
        assert!(
            out.status.success(),
            "{program} {args:?}: {}{}\nlog: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
        );
    }

    /// `pg_ctl start` and wait until it accepts connections.
    pub fn start_server(&self) {
        let log = self.dir.path().join("log");
        if !log.exists() {
            std::fs::write(&log, "").unwrap();
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o666)).unwrap();
            }
        }
        self.run(
            "pg_ctl",
            &[
                "-D",
                self.data().to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "postgres did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `pg_ctl stop -m immediate`: the server dies as in a crash (no checkpoint).
    pub fn stop_immediate(&self) {
        self.run(
            "pg_ctl",
            &[
                "-D",
                self.data().to_str().unwrap(),
                "-w",
                "stop",
                "-m",
                "immediate",
            ],
        );
    }

    /// A URL for `db` with the password in it (and TLS parameters when the server has them).
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://{USER}:{PASSWORD}@127.0.0.1:{}/{db}?sslmode=disable",
            self.port
        )
    }

    /// A URL for `db` without a password.
    pub fn url_without_password(&self, db: &str) -> String {
        format!(
            "postgres://{USER}@127.0.0.1:{}/{db}?sslmode=disable",
            self.port
        )
    }

    /// A fresh, empty database; its URL.
    pub fn database(&self) -> String {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "t{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        self.sql("postgres", &format!("CREATE DATABASE {name}"));
        self.url(&name)
    }

    /// Runs SQL in `db` with psql (as the test superuser, over the socket).
    pub fn sql(&self, db: &str, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args([
                "-X",
                "-q",
                "-t",
                "-A",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                USER,
                "-d",
                db,
                "-c",
                sql,
            ])
            .env("PGPASSWORD", PASSWORD)
            .env("PGSSLMODE", "disable")
            .output()
            .expect("psql");
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// The database name of a URL [`Pg::database`] made.
    pub fn db_of(url: &str) -> String {
        url.rsplit('/')
            .next()
            .unwrap()
            .split('?')
            .next()
            .unwrap()
            .to_string()
    }

    /// The temporary directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        if !self.shared {
            let _ = Command::new("sh")
                .args(["-c", &self.command_line(&["stop", "-m", "immediate"])])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// `ca.pem`/`ca.key` and `tls.pem`/`tls.key` for 127.0.0.1 and localhost, signed by it.
pub fn certs_for(dir: &Path) {
    crate::registry::certs(dir, "ca", "tls");
}
