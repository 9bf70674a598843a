//! A real Kubernetes control plane on loopback for tests: etcd and kube-apiserver built from
//! their Go modules (tools/k8s-peers, by scripts/test.sh), a throwaway CA, a service-account
//! key, an admin client certificate (group system:masters) and a second, ordinary user, and the
//! Go-built kubectl to drive it. No kubelet, no controller-manager, no nodes: objects are
//! stored, not run. Torn down when dropped.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::registry_harness::free_ports;
use crate::Run;

/// A running etcd + kube-apiserver.
pub struct ControlPlane {
    dir: tempfile::TempDir,
    etcd: Child,
    apiserver: Option<Child>,
    /// The API server's port on 127.0.0.1.
    pub port: u16,
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        if let Some(a) = self.apiserver.as_mut() {
            let _ = a.kill();
            let _ = a.wait();
        }
        let _ = self.etcd.kill();
        let _ = self.etcd.wait();
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A key and a certificate signed by `ca` in `dir`: `name.key`, `name.pem`.
fn issue(dir: &Path, name: &str, subject: &str, ext: &str) {
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            subject,
        ],
    );
    std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &format!("{name}.pem"),
            "-days",
            "2",
            "-extfile",
            &format!("{name}.ext"),
        ],
    );
}

fn wait_for(what: &str, log: &Path, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !ready() {
        assert!(
            Instant::now() < deadline,
            "{what} did not become ready:\n{}",
            std::fs::read_to_string(log)
                .unwrap_or_default()
                .lines()
                .rev()
                .take(40)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

impl ControlPlane {
    /// Starts etcd and kube-apiserver; returns once `/readyz` answers ok.
    pub fn start() -> ControlPlane {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        openssl(
            d,
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=sostle test cluster CA",
            ],
        );
        issue(
            d,
            "apiserver",
            "/CN=kube-apiserver",
            "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default.svc\nextendedKeyUsage=serverAuth\n",
        );
        issue(
            d,
            "admin",
            "/O=system:masters/CN=admin",
            "extendedKeyUsage=clientAuth\n",
        );
        issue(
            d,
            "dev",
            "/O=developers/CN=dev",
            "extendedKeyUsage=clientAuth\n",
        );
        openssl(
            d,
            &[
                "ecparam",
                "-name",
                "prime256v1",
                "-genkey",
                "-noout",
                "-out",
                "sa.key",
            ],
        );
        openssl(d, &["ec", "-in", "sa.key", "-pubout", "-out", "sa.pub"]);

        // etcd's ports are drawn free, but another process can take one before etcd binds it:
        // an etcd that exits before it answers is started again on fresh ports.
        let etcd_log = d.join("etcd.log");
        let mut attempt = 0;
        let (etcd, client, port) = loop {
            attempt += 1;
            let [client, peer, port] = free_ports::<3>();
            let _ = std::fs::remove_dir_all(d.join("etcd"));
            let mut etcd = Command::new("etcd")
                .args([
                    "--name",
                    "sostle-test",
                    "--data-dir",
                    d.join("etcd").to_str().unwrap(),
                    "--listen-client-urls",
                    &format!("http://127.0.0.1:{client}"),
                    "--advertise-client-urls",
                    &format!("http://127.0.0.1:{client}"),
                    "--listen-peer-urls",
                    &format!("http://127.0.0.1:{peer}"),
                    "--initial-advertise-peer-urls",
                    &format!("http://127.0.0.1:{peer}"),
                    "--initial-cluster",
                    &format!("sostle-test=http://127.0.0.1:{peer}"),
                    "--unsafe-no-fsync",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::from(std::fs::File::create(&etcd_log).unwrap()))
                .spawn()
                .expect("etcd on PATH (scripts/test.sh builds it into ~/.cache/sostle/bin)");
            let mut exited = false;
            wait_for("etcd", &etcd_log, || {
                exited = matches!(etcd.try_wait(), Ok(Some(_)));
                exited || std::net::TcpStream::connect(("127.0.0.1", client)).is_ok()
            });
            if !exited {
                break (etcd, client, port);
            }
            let log = std::fs::read_to_string(&etcd_log).unwrap_or_default();
            assert!(
                attempt < 3 && log.contains("address already in use"),
                "etcd exited (attempt {attempt}):\n{log}"
            );
        };
        let mut cp = ControlPlane {
            dir,
            etcd,
            apiserver: None,
            port,
        };
        let d = cp.dir.path().to_path_buf();
        let log = d.join("apiserver.log");
        let p = |f: &str| d.join(f).display().to_string();
        let apiserver = Command::new("kube-apiserver")
            .args([
                format!("--etcd-servers=http://127.0.0.1:{client}"),
                "--bind-address=127.0.0.1".into(),
                "--advertise-address=127.0.0.1".into(),
                // The `kubernetes` Service's endpoints may not be a loopback address; nothing
                // here needs them.
                "--endpoint-reconciler-type=none".into(),
                format!("--secure-port={port}"),
                format!("--tls-cert-file={}", p("apiserver.pem")),
                format!("--tls-private-key-file={}", p("apiserver.key")),
                format!("--client-ca-file={}", p("ca.pem")),
                format!("--service-account-key-file={}", p("sa.pub")),
                format!("--service-account-signing-key-file={}", p("sa.key")),
                "--service-account-issuer=https://kubernetes.default.svc".into(),
                "--service-cluster-ip-range=10.96.0.0/16".into(),
                "--authorization-mode=RBAC".into(),
                // No controller-manager creates the default service accounts here.
                "--disable-admission-plugins=ServiceAccount".into(),
                "--allow-privileged=true".into(),
                format!("--cert-dir={}", p("apiserver-certs")),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
            .spawn()
            .expect("kube-apiserver on PATH (scripts/test.sh builds it into ~/.cache/sostle/bin)");
        cp.apiserver = Some(apiserver);
        cp.write_kubeconfig("admin");
        cp.write_kubeconfig("dev");
        wait_for("kube-apiserver", &log, || {
            cp.kubectl(&["get", "--raw", "/readyz"], None).stdout.trim() == "ok"
        });
        cp
    }

    fn write_kubeconfig(&self, user: &str) {
        let d = self.dir.path();
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: https://127.0.0.1:{}\n    certificate-authority: {}\nusers:\n- name: {user}\n  user:\n    client-certificate: {}\n    client-key: {}\ncontexts:\n- name: test\n  context: {{cluster: test, user: {user}}}\ncurrent-context: test\n",
            self.port,
            d.join("ca.pem").display(),
            d.join(format!("{user}.pem")).display(),
            d.join(format!("{user}.key")).display(),
        );
        std::fs::write(d.join(format!("{user}.kubeconfig")), text).unwrap();
    }

    /// The temporary directory (certificates, logs).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The API server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("apiserver.log")).unwrap_or_default()
    }

    /// kubectl as the admin (system:masters).
    pub fn kubectl(&self, args: &[&str], stdin: Option<&[u8]>) -> Run {
        self.kubectl_as("admin", args, stdin)
    }

    /// kubectl as `user` (`admin` or `dev`).
    pub fn kubectl_as(&self, user: &str, args: &[&str], stdin: Option<&[u8]>) -> Run {
        crate::run(
            Command::new("kubectl")
                .args(args)
                .arg("--request-timeout=60s")
                .env(
                    "KUBECONFIG",
                    self.dir.path().join(format!("{user}.kubeconfig")),
                )
                .env_remove("KUBERNETES_SERVICE_HOST"),
            stdin,
        )
    }

    /// The CA that signed the API server's certificate.
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }
}
