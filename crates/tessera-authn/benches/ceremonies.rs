//! The CPU cost of one sign-in's verification, without HTTP or storage:
//! argon2id password verification, a passkey assertion check, TOTP verification and
//! certificate path validation (with a CRL).
//! `cargo bench -p tessera-authn --bench ceremonies`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use tessera_authn::passkey::RelyingParty;
use tessera_authn::soft_authenticator::SoftAuthenticator;
use tessera_authn::x509::{self, KnownCrl, TrustedCa, test_pki};
use tessera_authn::{hashing, totp};

fn password(c: &mut Criterion) {
    let stored = hashing::hash("violet-harbour-engine-42", &[9; 16]).unwrap();
    let mut group = c.benchmark_group("password");
    group.sample_size(20);
    group.bench_function("argon2id verify (19 MiB, t=2, p=1)", |b| {
        b.iter(|| hashing::verify(black_box("violet-harbour-engine-42"), &stored))
    });
    group.finish();
}

fn passkey(c: &mut Criterion) {
    let origin = "https://id.contoso.com";
    let rp = RelyingParty::new(origin, "Contoso").unwrap();
    let mut authenticator = SoftAuthenticator::new([1; 16]);
    let (options, state) = rp
        .start_registration(uuid::Uuid::new_v4(), "adele", "Adele", &[])
        .unwrap();
    let response = authenticator
        .register(&options, origin)
        .unwrap()
        .to_string();
    let credential = rp
        .finish_registration(&response, &state)
        .unwrap()
        .credential;
    authenticator.counts = false;
    c.bench_function("passkey/start + verify an assertion (ES256)", |b| {
        b.iter_batched(
            || {
                let (options, state) = rp.start().unwrap();
                let assertion = authenticator
                    .assert(&options, origin, 0)
                    .unwrap()
                    .to_string();
                (assertion, state)
            },
            |(assertion, state)| {
                rp.identify(&assertion).unwrap();
                rp.finish_sign_in(&assertion, &state, &credential).unwrap()
            },
            criterion::BatchSize::SmallInput,
        )
    });
}

fn one_time_code(c: &mut Criterion) {
    let secret = [7u8; 20];
    let parameters = totp::Parameters::default();
    let code = totp::code_at(&secret, &parameters, 1_800_000_000);
    c.bench_function("totp/verify (window of 3 steps)", |b| {
        b.iter(|| {
            totp::verify(
                &secret,
                &parameters,
                black_box(&code),
                1_800_000_000,
                Some(1),
            )
        })
    });
}

fn certificate(c: &mut Criterion) {
    let root = test_pki::root("Bench Root");
    let issuing = test_pki::intermediate("Bench Issuing", &root);
    let leaf = test_pki::leaf(
        test_pki::LeafSpec {
            upn: "adele@contoso.com",
            serial: 5,
            policies: &[&[2, 16, 840, 1, 101, 2, 1, 11, 42]],
            days: 30,
            client_auth: true,
        },
        &issuing,
    );
    let store = [
        TrustedCa {
            der: root.der(),
            is_root: true,
            require_revocation_data: false,
        },
        TrustedCa {
            der: issuing.der(),
            is_root: false,
            require_revocation_data: true,
        },
    ];
    let revoked: Vec<u64> = (1000..3000).collect();
    let crls = [KnownCrl {
        der: test_pki::crl(&issuing, &revoked, 7),
    }];
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    c.bench_function(
        "certificate/validate a 3-certificate path with a 2,000-entry CRL",
        |b| b.iter(|| x509::validate(std::slice::from_ref(&leaf.der), &store, &crls, now).unwrap()),
    );
}

criterion_group!(benches, password, passkey, one_time_code, certificate);
criterion_main!(benches);
