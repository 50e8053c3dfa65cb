//! HTTPS in front of a plain TCP server, with a certificate from a throwaway CA: what the tests use to
//! run the HTTPS clients (rustls on ring) against moto and the test receivers, which speak plain HTTP.

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

pub struct TlsProxy {
    /// `https://127.0.0.1:PORT`: its certificate names 127.0.0.1.
    pub url: String,
    /// The CA's certificate (PEM), for `SSL_CERT_FILE`; no client trusts it otherwise.
    pub ca_file: tempfile::NamedTempFile,
    handshakes: Arc<AtomicUsize>,
}

impl TlsProxy {
    /// Terminates TLS on a free port and forwards each connection to the host and port of
    /// `upstream`, an `http://` URL.
    pub async fn start(upstream: &str) -> TlsProxy {
        let upstream = url::Url::parse(upstream).unwrap();
        let upstream = format!(
            "{}:{}",
            upstream.host_str().unwrap(),
            upstream.port_or_known_default().unwrap()
        );
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_key = KeyPair::generate().unwrap();
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let key = KeyPair::generate().unwrap();
        let certificate = CertificateParams::new(vec!["127.0.0.1".to_string()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        let config = ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(
                vec![certificate.der().clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .unwrap();
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let mut ca_file = tempfile::NamedTempFile::new().unwrap();
        ca_file.write_all(ca.pem().as_bytes()).unwrap();

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("https://{}", listener.local_addr().unwrap());
        let handshakes = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&handshakes);
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, counter, upstream) =
                    (acceptor.clone(), Arc::clone(&counter), upstream.clone());
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    counter.fetch_add(1, Ordering::SeqCst);
                    if let Ok(mut plain) = tokio::net::TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                    }
                });
            }
        });
        TlsProxy {
            url,
            ca_file,
            handshakes,
        }
    }

    /// TLS handshakes completed so far (a client that refused the certificate completed none).
    pub fn handshakes(&self) -> usize {
        self.handshakes.load(Ordering::SeqCst)
    }
}
