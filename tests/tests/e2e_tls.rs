//! TLS between cat2 and nats-server, certificates made in the test (a CA, a server certificate
//! for 127.0.0.1, client certificates from that CA and from another): with `verify: true` the
//! services connect with `[nats] tls_ca`, `tls_cert`, `tls_key` and work end to end, while a
//! plaintext client, a client without a certificate and one whose certificate comes from
//! another CA are refused.

use std::path::{Path, PathBuf};
use std::time::Duration;

use cat2_e2e::cluster::{Cluster, subscribe};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, ExtendedKeyUsagePurpose, IsCa, KeyPair,
};

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../root-example")
}

fn ca() -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

/// A certificate for `names` signed by `ca`, written as `dir/<stem>.pem` and
/// `dir/<stem>-key.pem`; returns both paths.
fn leaf(
    ca: &CertifiedIssuer<'static, KeyPair>,
    names: &[&str],
    usage: ExtendedKeyUsagePurpose,
    dir: &Path,
    stem: &str,
) -> (PathBuf, PathBuf) {
    let mut params =
        CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>()).unwrap();
    params.extended_key_usages.push(usage);
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, ca).unwrap();
    let (c, k) = (
        dir.join(format!("{stem}.pem")),
        dir.join(format!("{stem}-key.pem")),
    );
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    (c, k)
}

#[tokio::test(flavor = "multi_thread")]
async fn services_speak_tls_with_client_certificates_and_others_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca1 = ca();
    let ca_pem = d.join("ca.pem");
    std::fs::write(&ca_pem, ca1.pem()).unwrap();
    let (server_cert, server_key) = leaf(
        &ca1,
        &["127.0.0.1", "localhost"],
        ExtendedKeyUsagePurpose::ServerAuth,
        d,
        "server",
    );
    let (client_cert, client_key) = leaf(
        &ca1,
        &["cat2"],
        ExtendedKeyUsagePurpose::ClientAuth,
        d,
        "client",
    );
    let ca2 = ca();
    let (other_cert, other_key) = leaf(
        &ca2,
        &["rogue"],
        ExtendedKeyUsagePurpose::ClientAuth,
        d,
        "other",
    );

    let server_conf = d.join("server.conf");
    std::fs::write(
        &server_conf,
        format!(
            "tls {{\n  cert_file: \"{}\"\n  key_file: \"{}\"\n  ca_file: \"{}\"\n  verify: true\n  timeout: 2\n}}\n",
            server_cert.display(),
            server_key.display(),
            ca_pem.display()
        ),
    )
    .unwrap();
    let client_conf = d.join("cat2.toml");
    std::fs::write(
        &client_conf,
        format!(
            "[nats]\ntls_ca = \"{}\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
            ca_pem.display(),
            client_cert.display(),
            client_key.display()
        ),
    )
    .unwrap();

    let mut c = Cluster::new(&["-c", &server_conf.display().to_string()]);
    let url = c.nats.url().to_owned();
    let conf = client_conf.display().to_string();
    let _bro = c.broker_with("bro", &["--conf", &conf]);
    let _publ = c.publisher_with("foo", &example(), "a", false, &["--conf", &conf]);
    let sub = c.subscriber_with(10.0, &["--conf", &conf]);
    let base = format!("http://{}", sub.http.clone().unwrap());
    let http = cat2_e2e::http();
    subscribe(&http, &base, "foo").await;
    let got = http
        .get(format!("{base}/files/foo/ds-1d.b2nd"))
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), 200);
    let want = std::fs::read(example().join("ds-1d.b2nd")).unwrap();
    assert_eq!(got.bytes().await.unwrap().len(), want.len());

    let connect = |o: async_nats::ConnectOptions| {
        let url = url.clone();
        async move {
            tokio::time::timeout(Duration::from_secs(10), o.connect(url))
                .await
                .expect("connect answers in time")
        }
    };
    // The same options as the services: connects.
    let good = async_nats::ConnectOptions::new()
        .add_root_certificates(ca_pem.clone())
        .add_client_certificate(client_cert.clone(), client_key.clone())
        .require_tls(true);
    assert!(connect(good).await.is_ok());
    // Plaintext, no client certificate, a certificate of another CA: refused.
    assert!(connect(async_nats::ConnectOptions::new()).await.is_err());
    let no_cert = async_nats::ConnectOptions::new()
        .add_root_certificates(ca_pem.clone())
        .require_tls(true);
    assert!(connect(no_cert).await.is_err());
    let other = async_nats::ConnectOptions::new()
        .add_root_certificates(ca_pem.clone())
        .add_client_certificate(other_cert, other_key)
        .require_tls(true);
    assert!(connect(other).await.is_err());
}
