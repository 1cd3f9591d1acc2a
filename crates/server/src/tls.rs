//! HTTPS for `mkoba serve --tls`: rustls with a certificate from files (`--tls-cert`,
//! `--tls-key`), or, without files, one issued at each start by a local certificate
//! authority that Mkoba creates once in its data directory (`tls/ca.pem`, its key
//! `tls/ca-key.pem` owner-only). The certificate names localhost, `127.0.0.1`, `::1` and
//! the providers' public host names ([`PROVIDER_HOSTS`], plus `--tls-host`), so a client
//! that hard-codes `https://openapi.m-pesa.com` reaches Mkoba unmodified once it trusts the
//! CA and the name points here (`mkoba tls trust` prints how). The MoMo and M-Pesa paths
//! answer whatever `Host` says.
//!
//! The CA can sign for those names only: its certificate carries name constraints (RFC 5280
//! §4.2.1.10, which OpenSSL, browsers and rustls's webpki enforce) naming the hosts it was
//! made for, listed beside it (`tls/ca-names.txt`), and it is valid for ten years. Before
//! 2026-12-07 it could sign for any site and lasted until 4096, so its key (in the data
//! directory and every backup of it) could make a certificate for any HTTPS site of a
//! machine that trusts it system-wide (the operations audit). A start that needs a name the
//! CA does not permit (a new `--tls-host`) makes a new CA, which clients must trust anew,
//! and says so. A CA made before has no list and is kept as it is (unconstrained): remove
//! `tls/` to replace it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject as _};

/// The public host names of the real platforms, which clients hard-code.
pub const PROVIDER_HOSTS: [&str; 7] = [
    "sandbox.momodeveloper.mtn.com",
    "proxy.momoapi.mtn.com",
    "ericssonbasicapi2.azure-api.net",
    "openapi.m-pesa.com",
    "api.sandbox.vm.co.mz",
    "api.vm.co.mz",
    "api.mpesa.vm.co.mz",
];

/// The local CA's files in the data directory.
pub const CA_DIR: &str = "tls";
pub const CA_CERT_FILE: &str = "ca.pem";
const CA_KEY_FILE: &str = "ca-key.pem";
/// The names the CA may sign for, one a line.
const CA_NAMES_FILE: &str = "ca-names.txt";
/// How long a new CA is valid.
const CA_YEARS: i32 = 10;

/// How the server gets its certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsSettings {
    /// A certificate chain (PEM) and its key; both, or neither (then the local CA issues).
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// Host names the issued certificate names besides the default ones.
    pub hosts: Vec<String>,
}

/// Every name the issued certificate carries.
pub fn names(extra: &[String]) -> Vec<String> {
    let mut names: Vec<String> = ["localhost", "127.0.0.1", "::1"]
        .iter()
        .chain(PROVIDER_HOSTS.iter())
        .map(|s| (*s).to_owned())
        .collect();
    for h in extra {
        let h = h.trim().to_ascii_lowercase();
        if !h.is_empty() && !names.contains(&h) {
            names.push(h);
        }
    }
    names
}

/// The path of the local CA's certificate (what clients are told to trust).
pub fn ca_path(data: &Path) -> PathBuf {
    data.join(CA_DIR).join(CA_CERT_FILE)
}

/// The CA's certificate; `permitted`: the names it may sign for (`None`: a CA made before
/// they were listed, unconstrained).
fn ca_params(permitted: Option<&[String]>) -> CertificateParams {
    let mut params = CertificateParams::default();
    if let Some(names) = permitted {
        let subtrees = names
            .iter()
            .map(|n| match n.parse::<std::net::IpAddr>() {
                Ok(ip) => rcgen::GeneralSubtree::IpAddress(rcgen::CidrSubnet::from_addr_prefix(
                    ip,
                    if ip.is_ipv4() { 32 } else { 128 },
                )),
                Err(_) => rcgen::GeneralSubtree::DnsName(n.clone()),
            })
            .collect();
        params.name_constraints = Some(rcgen::NameConstraints {
            permitted_subtrees: subtrees,
            excluded_subtrees: Vec::new(),
        });
    }
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "Mkoba local certificate authority");
    dn.push(DnType::OrganizationName, "Mkoba");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

/// The local CA for `names`: created once (certificate and owner-only key in `data/tls/`,
/// with the names it may sign for), then reloaded, and made anew when a name is needed that
/// it does not permit. The certificate object is rebuilt from the same name, constraints and
/// key to sign with; clients trust the saved file.
fn local_ca(data: &Path, names: &[String]) -> anyhow::Result<(rcgen::Certificate, KeyPair)> {
    let dir = data.join(CA_DIR);
    let (cert_path, key_path) = (dir.join(CA_CERT_FILE), dir.join(CA_KEY_FILE));
    let names_path = dir.join(CA_NAMES_FILE);
    let mut replaced = false;
    if key_path.exists() && cert_path.exists() {
        let permitted: Option<Vec<String>> = match std::fs::read_to_string(&names_path) {
            Ok(text) => Some(text.lines().map(str::to_owned).collect()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e).with_context(|| format!("reading {}", names_path.display())),
        };
        let covers = permitted
            .as_ref()
            .is_none_or(|p| names.iter().all(|n| p.contains(n)));
        if covers {
            let pem = std::fs::read_to_string(&key_path)
                .with_context(|| format!("reading {}", key_path.display()))?;
            let key = KeyPair::from_pem(&pem).context("the local CA's key is unusable")?;
            let cert = ca_params(permitted.as_deref())
                .self_signed(&key)
                .context("rebuilding the local CA")?;
            return Ok((cert, key));
        }
        for file in [&key_path, &cert_path, &names_path] {
            std::fs::remove_file(file).with_context(|| format!("removing {}", file.display()))?;
        }
        replaced = true;
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let key = KeyPair::generate().context("generating the local CA's key")?;
    let mut params = ca_params(Some(names));
    (params.not_before, params.not_after) = valid_for(CA_YEARS * 365 + CA_YEARS / 4);
    let cert = params.self_signed(&key).context("creating the local CA")?;
    write_private(&key_path, key.serialize_pem().as_bytes())?;
    std::fs::write(&cert_path, cert.pem())
        .with_context(|| format!("writing {}", cert_path.display()))?;
    std::fs::write(&names_path, names.join("\n"))
        .with_context(|| format!("writing {}", names_path.display()))?;
    if replaced {
        tracing::warn!(
            ca = %cert_path.display(),
            "made a new local certificate authority for --tls: the old one could not sign for every name asked (a new --tls-host); clients must trust the new one (mkoba tls trust)"
        );
    } else {
        tracing::info!(ca = %cert_path.display(), "created a local certificate authority for --tls, which can sign for its hosts only");
    }
    Ok((cert, key))
}

fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut f = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(bytes)
        .with_context(|| format!("writing {}", path.display()))
}

/// How long a certificate issued at a start is valid.
const LEAF_DAYS: i32 = 397;

/// A validity from yesterday (a client whose clock is a little behind still takes it) to
/// `days` from now.
fn valid_for(days: i32) -> (time::OffsetDateTime, time::OffsetDateTime) {
    // The certificate is infrastructure: the system's time, not a test clock's.
    let secs = mkoba_platform::clock::system_now_ms() / 1000;
    let now =
        time::OffsetDateTime::from_unix_timestamp(secs).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    (
        now - time::Duration::days(1),
        now + time::Duration::days(i64::from(days)),
    )
}

/// A certificate for [`names`] signed by the local CA, and its key.
fn issue(
    data: &Path,
    hosts: &[String],
) -> anyhow::Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    let names = names(hosts);
    let (ca, ca_key) = local_ca(data, &names)?;
    let mut params = CertificateParams::new(names).context("the --tls-host names")?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "Mkoba");
    params.distinguished_name = dn;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    // Issued at every start, so it may be short: Apple's systems refuse a server
    // certificate valid for more than 825 days even from a root the user installed (one of
    // three years was; the re-audit of 2026-12-07).
    (params.not_before, params.not_after) = valid_for(LEAF_DAYS);
    let key = KeyPair::generate().context("generating the server's key")?;
    let cert = params
        .signed_by(&key, &ca, &ca_key)
        .context("issuing the server's certificate")?;
    let chain = vec![cert.der().clone(), ca.der().clone()];
    let key = PrivateKeyDer::try_from(key.serialize_der())
        .map_err(|e| anyhow::anyhow!("the server's key: {e}"))?;
    Ok((chain, key))
}

/// Warns when others than its owner may read the operator's key file (said, not changed,
/// as for a `--mpesa-key-file`).
fn warn_if_readable(key: &Path) {
    if let Some(mode) = mkoba_mpesa::rsa::open_to_others(key) {
        tracing::warn!(
            file = %key.display(),
            "the TLS private key file is open to others than its owner (mode {mode:o}): make it owner-only (chmod 600)"
        );
    }
}

/// The rustls configuration of the HTTPS listener.
pub fn server_config(data: &Path, tls: &TlsSettings) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let (chain, key) = match (&tls.cert, &tls.key) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .with_context(|| format!("reading {}", cert.display()))?
                .collect::<Result<Vec<_>, _>>()
                .with_context(|| format!("{} is not PEM certificates", cert.display()))?;
            anyhow::ensure!(!chain.is_empty(), "{} holds no certificate", cert.display());
            warn_if_readable(key);
            let key = PrivateKeyDer::from_pem_file(key)
                .with_context(|| format!("reading the private key {}", key.display()))?;
            (chain, key)
        }
        (None, None) => issue(data, &tls.hosts)?,
        _ => anyhow::bail!("--tls-cert and --tls-key go together"),
    };
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .context("TLS setup")?
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .context("the certificate and key do not go together")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// What `mkoba tls trust` prints: how to trust the local CA and point the providers' host
/// names here.
pub fn trust_instructions(data: &Path, port: u16) -> String {
    let ca = ca_path(data);
    let ca = std::fs::canonicalize(&ca).unwrap_or(ca);
    let ca = ca.display();
    let mut out = format!(
        "The local certificate authority of `mkoba serve --tls`: {ca}\n\n\
         Trust it for one program:\n\
         \x20 export REQUESTS_CA_BUNDLE={ca}     # Python requests\n\
         \x20 export SSL_CERT_FILE={ca}          # OpenSSL, Python's ssl, Ruby, curl with OpenSSL\n\
         \x20 export NODE_EXTRA_CA_CERTS={ca}    # Node.js\n\
         \x20 curl --cacert {ca} https://openapi.m-pesa.com:{port}/...\n\n\
         Or for the whole machine (Debian, Ubuntu):\n\
         \x20 sudo cp {ca} /usr/local/share/ca-certificates/mkoba-local-ca.crt && sudo update-ca-certificates\n\n\
         Point the providers' host names at this machine (/etc/hosts):\n"
    );
    for h in PROVIDER_HOSTS {
        out.push_str(&format!("  127.0.0.1 {h}\n"));
    }
    if port != 443 {
        out.push_str(&format!(
            "\nClients that hard-code port 443 need the server there (`mkoba serve --tls --listen 127.0.0.1:443`, as root or with CAP_NET_BIND_SERVICE), or a redirect from 443 to {port}.\n"
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client's verifier that trusts the CA certificates in `pem`.
    fn trusting(pem: &[u8]) -> Arc<rustls::client::WebPkiServerVerifier> {
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(pem) {
            roots.add(c.unwrap()).unwrap();
        }
        rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::new(rustls::crypto::ring::default_provider()),
        )
        .build()
        .unwrap()
    }

    #[test]
    fn the_local_ca_is_made_once_and_signs_what_names_every_host() {
        use rustls::client::danger::ServerCertVerifier as _;
        let dir = tempfile::tempdir().unwrap();
        let (chain, _) = issue(dir.path(), &["bank.example".to_owned()]).unwrap();
        let first = std::fs::read(ca_path(dir.path())).unwrap();
        let (again, _) = issue(dir.path(), &[]).unwrap();
        assert_eq!(std::fs::read(ca_path(dir.path())).unwrap(), first, "kept");
        assert_ne!(chain[0], again[0], "a fresh certificate each start");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.path().join(CA_DIR).join(CA_KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // The issued certificate verifies against the saved CA for every provider host.
        let verifier = trusting(&first);
        let now = rustls::pki_types::UnixTime::now();
        for host in names(&["bank.example".to_owned()]) {
            let name = rustls::pki_types::ServerName::try_from(host.clone()).unwrap();
            verifier
                .verify_server_cert(&chain[0], &chain[1..], &name, &[], now)
                .unwrap_or_else(|e| panic!("{host}: {e}"));
        }
        let other = rustls::pki_types::ServerName::try_from("evil.example").unwrap();
        assert!(
            verifier
                .verify_server_cert(&chain[0], &[], &other, &[], now)
                .is_err()
        );
        // Whoever holds the CA's key (a copy of the data directory, a backup) cannot make
        // a certificate another site's clients take: the CA names its hosts.
        let key = std::fs::read_to_string(dir.path().join(CA_DIR).join(CA_KEY_FILE)).unwrap();
        let key = KeyPair::from_pem(&key).unwrap();
        let permitted = names(&["bank.example".to_owned()]);
        let ca = ca_params(Some(&permitted)).self_signed(&key).unwrap();
        let forged_key = KeyPair::generate().unwrap();
        let forged = CertificateParams::new(vec!["evil.example".to_owned()])
            .unwrap()
            .signed_by(&forged_key, &ca, &key)
            .unwrap();
        let e = verifier
            .verify_server_cert(forged.der(), &[], &other, &[], now)
            .expect_err("outside the CA's names");
        assert!(format!("{e:?}").contains("NameConstraint"), "{e:?}");
        // A name the CA was not made for makes a new CA, which names it.
        let (chain, _) = issue(dir.path(), &["shop.example".to_owned()]).unwrap();
        let second = std::fs::read(ca_path(dir.path())).unwrap();
        assert_ne!(second, first, "a new CA");
        let listed = std::fs::read_to_string(dir.path().join(CA_DIR).join(CA_NAMES_FILE)).unwrap();
        assert!(listed.lines().any(|l| l == "shop.example"), "{listed}");
        let verifier = trusting(&second);
        let shop = rustls::pki_types::ServerName::try_from("shop.example").unwrap();
        verifier
            .verify_server_cert(&chain[0], &chain[1..], &shop, &[], now)
            .unwrap();
    }

    #[test]
    fn trust_instructions_name_the_ca_and_the_hosts() {
        let text = trust_instructions(Path::new("/srv/mkoba"), 8443);
        assert!(text.contains("REQUESTS_CA_BUNDLE=/srv/mkoba/tls/ca.pem"));
        assert!(text.contains("NODE_EXTRA_CA_CERTS=/srv/mkoba/tls/ca.pem"));
        assert!(text.contains("127.0.0.1 openapi.m-pesa.com"));
        assert!(text.contains("127.0.0.1 sandbox.momodeveloper.mtn.com"));
        assert!(text.contains("443"));
    }
}
