//! Signing one access token, per algorithm: the CPU floor of a token request.
//! `cargo bench -p tessera-oauth --bench signing`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use tessera_oauth::jws;
use tessera_oauth::keys::{Algorithm, generate};

fn signing(c: &mut Criterion) {
    let claims = json!({
        "iss": "https://id.contoso.com", "sub": "5f0c7a0e-8c4b-4b8e-9a55-2d1f3c1b9e11",
        "aud": "api://payroll", "client_id": "5f0c7a0e-8c4b-4b8e-9a55-2d1f3c1b9e11",
        "iat": 1_800_000_000, "exp": 1_800_003_600, "jti": "3b1d", "roles": ["Payroll.Read"]
    });
    for alg in Algorithm::ALL {
        let (_, key) = generate(alg).unwrap();
        c.bench_function(&format!("sign an access token/{}", alg.as_str()), |b| {
            b.iter(|| jws::sign(&key, "at+jwt", &claims).unwrap())
        });
    }
}

criterion_group!(benches, signing);
criterion_main!(benches);
