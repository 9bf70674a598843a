//! A real OCI registry on loopback for tests: Debian's `docker-registry` (distribution 2.8)
//! with a temporary storage directory, plain HTTP or TLS with htpasswd basic auth, started and
//! stopped by the test. Images get into it with `skopeo copy` from an OCI layout written here.
//! Also the test CA and certificates (openssl), free loopback ports, and a real Rekor stack.

use std::io::Write as _;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running registry.
#[derive(Debug)]
pub struct TestRegistry {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub host: String,
    /// The temporary directory (storage, config, certificates).
    pub dir: tempfile::TempDir,
    /// With TLS: the CA that signed the registry's certificate.
    pub ca: Option<PathBuf>,
    /// With auth: user and password.
    pub login: Option<(String, String)>,
    /// The token service, when the registry uses token auth.
    token_server: Option<Child>,
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(t) = self.token_server.as_mut() {
            let _ = t.kill();
            let _ = t.wait();
        }
    }
}

/// How a test registry authenticates.
enum Auth {
    None,
    Htpasswd,
    Token,
}

fn run(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn openssl(args: &[&str], dir: &Path) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA and a serving certificate for localhost signed by it, named `<name>.pem`/`<name>.key`.
pub fn certs(dir: &Path, ca: &str, name: &str) {
    if !dir.join(format!("{ca}.pem")).exists() {
        openssl(
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                &format!("{ca}.key"),
                "-out",
                &format!("{ca}.pem"),
                "-days",
                "2",
                "-subj",
                &format!("/CN={ca}"),
            ],
            dir,
        );
    }
    openssl(
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
            "/CN=localhost",
        ],
        dir,
    );
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .unwrap();
    openssl(
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-out",
            &format!("{name}.pem"),
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
        dir,
    );
}

/// A loopback port nobody listens on (at the time of asking).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `N` distinct free ports: the listeners are held until all are drawn (one after another, a
/// closed listener's port can be handed out again at once).
pub fn free_ports<const N: usize>() -> [u16; N] {
    let listeners: [std::net::TcpListener; N] =
        std::array::from_fn(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap());
    listeners.map(|l| l.local_addr().unwrap().port())
}

/// A CA (`ca.pem`) and a certificate for 127.0.0.1/localhost it signed (`tls.pem`, `tls.key`).
pub fn loopback_certs(dir: &Path) -> PathBuf {
    certs(dir, "ca", "tls");
    dir.join("ca.pem")
}

impl TestRegistry {
    /// Plain HTTP, no auth.
    pub fn plain() -> TestRegistry {
        TestRegistry::start(false, None, Auth::None)
    }

    /// TLS (a test CA) and htpasswd basic auth for `user`/`password`.
    pub fn tls_with_login(user: &str, password: &str) -> TestRegistry {
        TestRegistry::start(true, Some((user.into(), password.into())), Auth::Htpasswd)
    }

    /// Plain HTTP and bearer-token auth, as ACR, Docker Hub and GHCR do it: the registry sends
    /// clients to a token service (`token_server.py` beside this crate's `Cargo.toml`) that takes `user`/`password` and
    /// issues ES256 tokens the registry verifies.
    pub fn with_token_service(user: &str, password: &str) -> TestRegistry {
        TestRegistry::start(false, Some((user.into(), password.into())), Auth::Token)
    }

    fn start(tls: bool, login: Option<(String, String)>, auth: Auth) -> TestRegistry {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let host = format!("127.0.0.1:{port}");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {host}\n",
            dir.path().join("storage").display()
        );
        let mut ca = None;
        if tls {
            ca = Some(loopback_certs(dir.path()));
            config.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                dir.path().join("tls.pem").display(),
                dir.path().join("tls.key").display()
            ));
        }
        let mut token_server = None;
        if let (Auth::Token, Some((u, p))) = (&auth, &login) {
            let o = |args: &[&str]| {
                run(Command::new("openssl").args(args).current_dir(dir.path()));
            };
            o(&[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                "token.key",
                "-out",
                "token.pem",
                "-days",
                "2",
                "-subj",
                "/CN=sostle test token issuer",
            ]);
            let portfile = dir.path().join("token.port");
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("token_server.py");
            let child = Command::new("python3")
                .arg(&script)
                .arg(dir.path().join("token.key"))
                .arg(dir.path().join("token.pem"))
                .args([u, p])
                .arg(&portfile)
                .stderr(std::fs::File::create(dir.path().join("token.log")).expect("log"))
                .spawn()
                .expect("python3 for the token service");
            token_server = Some(child);
            let deadline = Instant::now() + Duration::from_secs(20);
            let port = loop {
                if let Ok(p) = std::fs::read_to_string(&portfile) {
                    break p;
                }
                assert!(
                    Instant::now() < deadline,
                    "the token service did not start: {}",
                    std::fs::read_to_string(dir.path().join("token.log")).unwrap_or_default()
                );
                std::thread::sleep(Duration::from_millis(50));
            };
            config.push_str(&format!(
                "auth:\n  token:\n    realm: http://127.0.0.1:{port}/token\n    service: sostle-test\n    issuer: sostle-test-issuer\n    rootcertbundle: {}\n",
                dir.path().join("token.pem").display()
            ));
        }
        if let (Auth::Htpasswd, Some((u, p))) = (&auth, &login) {
            let out = run(Command::new("htpasswd").args(["-nbB", u, p]));
            std::fs::write(dir.path().join("htpasswd"), out.stdout).expect("htpasswd");
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: sostle-test\n    path: {}\n",
                dir.path().join("htpasswd").display()
            ));
        }
        let cfg = dir.path().join("config.yml");
        std::fs::write(&cfg, config).expect("config");
        let log = std::fs::File::create(dir.path().join("registry.log")).expect("log");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("docker-registry (Debian package docker-registry) on PATH");
        let r = TestRegistry {
            child,
            host,
            dir,
            ca,
            login,
            token_server,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(&r.host).is_err() {
            assert!(
                Instant::now() < deadline,
                "docker-registry did not listen on {}: {}",
                r.host,
                std::fs::read_to_string(r.dir.path().join("registry.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        r
    }

    /// A Docker config directory holding this registry's login (for `DOCKER_CONFIG`).
    pub fn docker_config(&self) -> PathBuf {
        let d = self.dir.path().join("docker");
        std::fs::create_dir_all(&d).expect("docker dir");
        let auths = match &self.login {
            Some((u, p)) => {
                use base64::Engine as _;
                let b = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
                format!("{{\"auths\":{{\"{}\":{{\"auth\":\"{b}\"}}}}}}", self.host)
            }
            None => "{\"auths\":{}}".to_string(),
        };
        std::fs::write(d.join("config.json"), auths).expect("config.json");
        d
    }

    /// skopeo's flags to reach this registry.
    pub fn skopeo_flags(&self, dest: bool) -> Vec<String> {
        let side = if dest { "dest" } else { "src" };
        let mut f = Vec::new();
        match &self.ca {
            Some(_) => f.push(format!(
                "--{side}-cert-dir={}",
                self.skopeo_certs().display()
            )),
            None => f.push(format!("--{side}-tls-verify=false")),
        }
        if let Some((u, p)) = &self.login {
            f.push(format!("--{side}-creds={u}:{p}"));
        }
        f
    }

    fn skopeo_certs(&self) -> PathBuf {
        let d = self.dir.path().join("skopeo-certs");
        if !d.exists() {
            std::fs::create_dir_all(&d).expect("certs dir");
            if let Some(ca) = &self.ca {
                std::fs::copy(ca, d.join("ca.crt")).expect("ca.crt");
            }
        }
        d
    }

    /// Pushes a small, distinct image as `repo:tag` and returns its manifest digest (as skopeo
    /// reports it stored the image).
    pub fn push_image(&self, repo: &str, tag: &str) -> String {
        let layout = self
            .dir
            .path()
            .join(format!("layout-{}-{tag}", repo.replace('/', "_")));
        write_oci_layout(&layout, &format!("{repo}:{tag}"));
        let digest_file = layout.join("pushed.digest");
        let mut cmd = Command::new("skopeo");
        cmd.arg("copy").arg("--quiet").args(self.skopeo_flags(true));
        cmd.arg(format!("--digestfile={}", digest_file.display()));
        cmd.arg(format!("oci:{}:{tag}", layout.display()));
        cmd.arg(format!("docker://{}/{repo}:{tag}", self.host));
        run(&mut cmd);
        std::fs::read_to_string(&digest_file)
            .expect("skopeo --digestfile")
            .trim()
            .to_string()
    }
}

fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest as _;
    format!("{:x}", sha2::Sha256::digest(b))
}

/// An OCI image layout holding one image whose single layer says `content`; returns the
/// manifest digest (skopeo keeps the bytes, so the registry's digest is the same).
pub fn write_oci_layout(dir: &Path, content: &str) -> String {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).expect("layout");
    let put = |bytes: &[u8]| {
        let h = sha256_hex(bytes);
        std::fs::write(blobs.join(&h), bytes).expect("blob");
        (format!("sha256:{h}"), bytes.len())
    };
    // A tar of one file, written with the system tar so it is a real layer.
    let src = dir.join("src");
    std::fs::create_dir_all(&src).expect("src");
    std::fs::File::create(src.join("hello.txt"))
        .and_then(|mut f| f.write_all(content.as_bytes()))
        .expect("file");
    let tar = Command::new("tar")
        .args([
            "--sort=name",
            "--mtime=@0",
            "--owner=0",
            "--group=0",
            "-cf",
            "-",
            "hello.txt",
        ])
        .current_dir(&src)
        .output()
        .expect("tar");
    let (layer, layer_size) = put(&tar.stdout);
    let config = format!(
        "{{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{{}},\"rootfs\":{{\"type\":\"layers\",\"diff_ids\":[\"{layer}\"]}}}}"
    );
    let (config_digest, config_size) = put(config.as_bytes());
    let manifest = format!(
        "{{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"{config_digest}\",\"size\":{config_size}}},\"layers\":[{{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"{layer}\",\"size\":{layer_size}}}]}}"
    );
    let (manifest_digest, manifest_size) = put(manifest.as_bytes());
    let tag = content.rsplit(':').next().unwrap_or("latest");
    std::fs::write(dir.join("oci-layout"), "{\"imageLayoutVersion\":\"1.0.0\"}")
        .expect("oci-layout");
    std::fs::write(
        dir.join("index.json"),
        format!(
            "{{\"schemaVersion\":2,\"manifests\":[{{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"{manifest_digest}\",\"size\":{manifest_size},\"annotations\":{{\"org.opencontainers.image.ref.name\":\"{tag}\"}}}}]}}"
        ),
    )
    .expect("index.json");
    manifest_digest
}

/// A real Rekor on loopback (rekor-server with Trillian's log server and signer on MariaDB),
/// started by scripts/rekor-stack.sh and stopped on drop.
#[derive(Debug)]
pub struct RekorStack {
    dir: tempfile::TempDir,
    /// The server's URL.
    pub url: String,
    /// Its public key (PEM), as `GET /api/v1/log/publicKey` gave it.
    pub key: PathBuf,
}

impl RekorStack {
    /// Starts the stack (a few seconds).
    pub fn start() -> RekorStack {
        let dir = tempfile::tempdir().expect("tempdir");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/rekor-stack.sh");
        let out = run(Command::new("bash")
            .arg(&script)
            .arg("start")
            .arg(dir.path()));
        let url = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let key = dir.path().join("rekor.pub");
        RekorStack { dir, url, key }
    }
}

impl Drop for RekorStack {
    fn drop(&mut self) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/rekor-stack.sh");
        let _ = Command::new("bash")
            .arg(&script)
            .arg("stop")
            .arg(self.dir.path())
            .output();
    }
}
