//! Client certificates (from the TLS handshake or a proxy header), CA certificates
//! and CRLs uploaded by administrators, OCSP responses: path validation and the
//! parsers behind it.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tessera_authn::x509::{self, KnownCrl, TrustedCa, test_pki};

struct Pki {
    store: Vec<TrustedCa>,
    crls: Vec<KnownCrl>,
    leaf: Vec<u8>,
}

fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let root = test_pki::root("Fuzz Root");
        let issuing = test_pki::intermediate("Fuzz Issuing", &root);
        let leaf = test_pki::leaf(
            test_pki::LeafSpec { upn: "fuzz@contoso.com", serial: 7, policies: &[&[1, 2, 3]], days: 30, client_auth: true },
            &issuing,
        );
        Pki {
            store: vec![
                TrustedCa { der: root.der(), is_root: true, require_revocation_data: false },
                TrustedCa { der: issuing.der(), is_root: false, require_revocation_data: true },
            ],
            crls: vec![KnownCrl { der: test_pki::crl(&issuing, &[9], 7) }],
            leaf: leaf.der,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let pki = pki();
    let now = 1_900_000_000;
    // As a leaf, as an intermediate sent along with a good leaf, as a CRL, as uploads.
    let _ = x509::validate(&[data.to_vec()], &pki.store, &pki.crls, now);
    let _ = x509::validate(&[pki.leaf.clone(), data.to_vec()], &pki.store, &pki.crls, now);
    let mut crls = pki.crls.clone();
    crls.push(KnownCrl { der: data.to_vec() });
    let _ = x509::validate(&[pki.leaf.clone()], &pki.store, &crls, now);
    let _ = x509::ca_facts(data);
    let _ = x509::crl_facts(data, &[pki.store[1].der.clone()]);
    let _ = x509::pem_or_der(data, "CERTIFICATE");
    let _ = tessera_authn::ocsp::check(data, &pki.leaf, &pki.store[1].der, now);
});
