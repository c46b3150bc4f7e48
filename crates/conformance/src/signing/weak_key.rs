//! The weak-key case's material, made by `openssl` at run time: a code-signing leaf whose
//! key is RSA 1024 (below the specification's 2048-bit minimum) under a root of its own
//! (EC P-256, so the key size is the chain's only fault), and PS256 signatures by that key.
//!
//! berth cannot make these itself: ring neither generates RSA keys nor signs with one under
//! 2048 bits. So the checker runs openssl, when it can; when it cannot (not installed, or it
//! fails) the case is reported as not run, with the reason — never as passed.
//!
//! ```text
//! WORKDIR/weak-rsa-pki/
//!   openssl.cnf        the two certificates' extensions
//!   root.key root.pem  EC P-256, self-signed CA (keyCertSign)
//!   leaf.key           RSA 1024
//!   leaf.csr leaf.pem  issued by root: CA:FALSE, digitalSignature, codeSigning
//!   input sig          the last signing input and its signature
//! ```

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use berth_trust::Certificate;

/// The time one openssl run has.
const OPENSSL_TIMEOUT: Duration = Duration::from_secs(60);

/// Bits of the weak key, and the same as openssl's `-pkeyopt`.
pub(crate) const WEAK_BITS: u32 = 1024;
const KEYGEN_BITS: &str = "rsa_keygen_bits:1024";

const CONFIG: &str = "[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[root]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[leaf]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = codeSigning
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
";

/// The weak leaf, its chain and the openssl that signs with its key.
pub(crate) struct WeakRsa {
    openssl: PathBuf,
    dir: PathBuf,
    /// The root (the case's trust store).
    pub root: Certificate,
    /// leaf (RSA 1024), root.
    pub chain: Vec<Certificate>,
}

/// Runs `openssl ARGS` in `dir`; the reason it failed, if it did.
async fn openssl(program: &Path, dir: &Path, args: &[&str]) -> Result<(), String> {
    let shown = format!("{} {}", program.display(), args.join(" "));
    let child = tokio::process::Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => format!(
                "{} was not found: the weak-key case needs openssl to make a {WEAK_BITS}-bit RSA key (berth's crypto library cannot); install openssl to run it",
                program.display()
            ),
            _ => format!("could not start {shown}: {e}"),
        })?;
    let out = tokio::time::timeout(OPENSSL_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| format!("{shown} did not finish within {OPENSSL_TIMEOUT:?}: killed"))?
        .map_err(|e| format!("{shown}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{shown} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn write(path: &Path, data: &[u8]) -> Result<(), String> {
    berth_fsutil::atomic_write(path, data)
        .map_err(|e| format!("failed to write {}: {e}", path.display()))
}

fn read_cert(path: &Path) -> Result<Certificate, String> {
    let data =
        std::fs::read(path).map_err(|e| format!("failed to read {}: {e}", path.display()))?;
    Certificate::parse_many(&data)
        .ok()
        .and_then(|c| c.into_iter().next())
        .ok_or_else(|| format!("{} holds no certificate openssl made", path.display()))
}

impl WeakRsa {
    /// Makes the root and the weak leaf in `dir` (created) with `program` (openssl); the
    /// reason the case cannot run otherwise.
    pub(crate) async fn make(program: &Path, dir: &Path) -> Result<WeakRsa, String> {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("failed to create {}: {e}", dir.display()))?;
        write(&dir.join("openssl.cnf"), CONFIG.as_bytes())?;
        let run = |args: &'static [&'static str]| openssl(program, dir, args);
        run(&[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            "root.key",
        ])
        .await?;
        run(&[
            "req",
            "-x509",
            "-new",
            "-config",
            "openssl.cnf",
            "-extensions",
            "root",
            "-key",
            "root.key",
            "-subj",
            "/C=US/O=Notary/CN=berth conformance weak-key root",
            "-days",
            "30",
            "-sha256",
            "-set_serial",
            "1",
            "-out",
            "root.pem",
        ])
        .await?;
        run(&[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            KEYGEN_BITS,
            "-out",
            "leaf.key",
        ])
        .await?;
        run(&[
            "req",
            "-new",
            "-config",
            "openssl.cnf",
            "-key",
            "leaf.key",
            "-subj",
            "/C=US/O=Notary/CN=berth conformance weak-key signer",
            "-out",
            "leaf.csr",
        ])
        .await?;
        run(&[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "root.pem",
            "-CAkey",
            "root.key",
            "-set_serial",
            "2",
            "-days",
            "30",
            "-sha256",
            "-extfile",
            "openssl.cnf",
            "-extensions",
            "leaf",
            "-out",
            "leaf.pem",
        ])
        .await?;
        let root = read_cert(&dir.join("root.pem"))?;
        let leaf = read_cert(&dir.join("leaf.pem"))?;
        Ok(WeakRsa {
            openssl: program.to_owned(),
            dir: dir.to_owned(),
            chain: vec![leaf, root.clone()],
            root,
        })
    }

    /// RSASSA-PSS with SHA-256 (salt 32 bytes, MGF1 SHA-256: what `PS256` means) over
    /// `message` by the weak key.
    pub(crate) async fn sign_ps256(&self, message: &[u8]) -> Result<Vec<u8>, String> {
        write(&self.dir.join("input"), message)?;
        openssl(
            &self.openssl,
            &self.dir,
            &[
                "dgst",
                "-sha256",
                "-sign",
                "leaf.key",
                "-sigopt",
                "rsa_padding_mode:pss",
                "-sigopt",
                "rsa_pss_saltlen:32",
                "-sigopt",
                "rsa_mgf1_md:sha256",
                "-out",
                "sig",
                "input",
            ],
        )
        .await?;
        let path = self.dir.join("sig");
        std::fs::read(&path).map_err(|e| format!("failed to read {}: {e}", path.display()))
    }
}
