//! The SAML context on SQLite and PostgreSQL: an application's SAML configuration
//! is checked, stored under its SP entity id (one application per entity id),
//! replaced with If-Match, and removed, with an audit event each time; a refused
//! change changes nothing; the IdP's certificate is made once and the metadata is
//! signed with it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use base64::Engine as _;
use serde_json::json;
use tessera_core::SystemClock;
use tessera_saml::xml::{self, Limits};
use tessera_saml::{dsig, metadata, request::DSIG};
use tessera_service::saml::CertificateState;
use tessera_service::{App, ServiceError};
use tessera_testkit::{Backend, bootstrap_admin, both_backends};

async fn app(backend: Backend) -> App {
    App::new(backend.store().await, Arc::new(SystemClock))
}

fn settings(entity: &str) -> serde_json::Value {
    json!({
        "entityId": entity,
        "consumerServices": [{"url": "https://sp.example/acs", "index": 0, "isDefault": true}],
        "attributes": [{"name": "email", "source": {"kind": "user", "attribute": "mail"}}]
    })
}

async fn configurations_are_checked_stored_and_removed(app: App) {
    let admin = bootstrap_admin(&app).await;
    let ctx = &admin.ctx;
    let payroll = app
        .directory
        .create_application(ctx, json!({"displayName": "Payroll"}))
        .await
        .unwrap();
    let travel = app
        .directory
        .create_application(ctx, json!({"displayName": "Travel"}))
        .await
        .unwrap();
    assert!(
        app.saml
            .configuration(ctx, payroll.id)
            .await
            .unwrap()
            .is_none()
    );
    let stored = app
        .saml
        .configure(ctx, payroll.id, settings("https://payroll.example"), None)
        .await
        .unwrap();
    assert_eq!(stored.app_id, payroll.app_id);
    // One application per entity id.
    let taken = app
        .saml
        .configure(ctx, travel.id, settings("https://payroll.example"), None)
        .await
        .unwrap_err();
    assert!(matches!(taken, ServiceError::Conflict { .. }), "{taken:?}");
    // A bad configuration is refused by name and changes nothing.
    let mut bad = settings("https://payroll.example");
    bad["consumerServices"][0]["url"] = json!("http://sp.example/acs");
    let error = app
        .saml
        .configure(ctx, payroll.id, bad, None)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("https"), "{error}");
    let unknown = app
        .saml
        .configure(
            ctx,
            payroll.id,
            json!({"entityId": "x", "consumerServices": [], "extra": 1}),
            None,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(unknown, ServiceError::Validation(_)),
        "{unknown:?}"
    );
    // Replaced with the version read; a stale version is refused.
    let mut changed = settings("https://payroll.example/v2");
    changed["encryptAssertions"] = json!(false);
    let replaced = app
        .saml
        .configure(ctx, payroll.id, changed.clone(), Some(stored.version))
        .await
        .unwrap();
    assert_eq!(replaced.settings.entity_id, "https://payroll.example/v2");
    let stale = app
        .saml
        .configure(ctx, payroll.id, changed, Some(stored.version))
        .await
        .unwrap_err();
    assert!(
        matches!(stale, ServiceError::VersionMismatch { .. }),
        "{stale:?}"
    );
    // Saving the same again changes nothing: no new version.
    let mut same = settings("https://payroll.example/v2");
    same["encryptAssertions"] = json!(false);
    let unchanged = app
        .saml
        .configure(ctx, payroll.id, same, Some(replaced.version))
        .await
        .unwrap();
    assert_eq!(unchanged.version, replaced.version);
    // The old entity id is free again.
    app.saml
        .configure(ctx, travel.id, settings("https://payroll.example"), None)
        .await
        .unwrap();
    assert!(matches!(
        app.saml
            .remove(ctx, payroll.id, Some(stored.version + 7))
            .await,
        Err(ServiceError::VersionMismatch { .. })
    ));
    app.saml.remove(ctx, payroll.id, None).await.unwrap();
    assert!(
        app.saml
            .configuration(ctx, payroll.id)
            .await
            .unwrap()
            .is_none()
    );
    // Deleting an application deletes its SAML configuration and frees its entity id.
    app.directory
        .delete_application(ctx, tessera_service::Versioned::any(travel.id))
        .await
        .unwrap();
    app.saml
        .configure(ctx, payroll.id, settings("https://payroll.example"), None)
        .await
        .unwrap();
    let audit = serde_json::to_string(
        &app.directory
            .query_audit(ctx, &Default::default())
            .await
            .unwrap(),
    )
    .unwrap();
    assert!(audit.contains("application.saml.update"), "{audit}");
    assert!(audit.contains("application.saml.remove"), "{audit}");
}

async fn metadata_is_signed_with_the_tenant_certificate(app: App) {
    let admin = bootstrap_admin(&app).await;
    let tenant = admin.tenant();
    let text = app.saml.metadata(tenant).await.unwrap();
    let again = app.saml.metadata(tenant).await.unwrap();
    let certificates = app.saml.tenant_certificates(tenant).await.unwrap();
    assert_eq!(certificates.len(), 1, "one certificate, made once");
    let der = base64::engine::general_purpose::STANDARD
        .decode(&certificates[0].certificate)
        .unwrap();
    for text in [text, again] {
        let body = text.split_once('\n').unwrap().1;
        let document = xml::parse(body, Limits::default()).unwrap();
        assert!(document.root.is(metadata::METADATA, "EntityDescriptor"));
        assert_eq!(
            document.root.attribute("entityID"),
            Some("http://localhost:8080/saml2")
        );
        assert!(
            document
                .root
                .children_named(DSIG, "Signature")
                .next()
                .is_some()
        );
        dsig::verify_enveloped(&document, &[dsig::public_key_of(&der).unwrap()]).unwrap();
    }
}

/// Which of the given certificates (base64 DER) signed a metadata document, and
/// the certificates it publishes.
fn metadata_signer(text: &str, candidates: &[&str]) -> (Option<usize>, Vec<String>) {
    let body = text.split_once('\n').unwrap().1;
    let document = xml::parse(body, Limits::default()).unwrap();
    let signer = candidates.iter().position(|c| {
        let der = base64::engine::general_purpose::STANDARD.decode(c).unwrap();
        dsig::verify_enveloped(&document, &[dsig::public_key_of(&der).unwrap()]).is_ok()
    });
    // The KeyDescriptors' certificates (the signature carries its own too).
    let published = body
        .split("<md:KeyDescriptor")
        .skip(1)
        .map(|rest| {
            let rest = rest.split_once("<ds:X509Certificate>").unwrap().1;
            rest.split('<').next().unwrap().to_string()
        })
        .collect();
    (signer, published)
}

async fn application_certificates_roll_over(app: App) {
    let admin = bootstrap_admin(&app).await;
    let ctx = admin.ctx.clone();
    let tenant = admin.tenant();
    let created = app
        .directory
        .create_application(&ctx, json!({"displayName": "Rolled"}))
        .await
        .unwrap();
    let id = created.id;
    let app_id = created.app_id;
    // No SAML configuration: no certificate either.
    assert!(matches!(
        app.saml.add_application_certificate(&ctx, id).await,
        Err(ServiceError::NotFound { .. })
    ));
    let mut body = settings("https://rolled.example");
    body["signatureAlgorithm"] = json!("ecdsaSha256");
    app.saml.configure(&ctx, id, body, None).await.unwrap();
    let tenant_certificate = app.saml.tenant_certificates(tenant).await.unwrap()[0]
        .certificate
        .clone();
    let metadata = app
        .saml
        .application_metadata(tenant, app_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        metadata_signer(&metadata, &[&tenant_certificate]),
        (Some(0), vec![tenant_certificate.clone()]),
        "without its own, the tenant's certificate signs for the application"
    );
    let metadata_now = || async {
        app.saml
            .application_metadata(tenant, app_id)
            .await
            .unwrap()
            .unwrap()
    };
    // From the tenant's certificate to the application's own: the new one is
    // published beside the tenant's before it signs.
    let first = app
        .saml
        .add_application_certificate(&ctx, id)
        .await
        .unwrap();
    assert_eq!(first.state, CertificateState::Next);
    assert_eq!(first.algorithm_label(), "ECDSA-SHA256");
    assert_eq!(
        metadata_signer(
            &metadata_now().await,
            &[&tenant_certificate, &first.certificate]
        ),
        (
            Some(0),
            vec![tenant_certificate.clone(), first.certificate.clone()]
        ),
        "the next certificate is published while the tenant's still signs"
    );
    assert!(
        matches!(
            app.saml.add_application_certificate(&ctx, id).await,
            Err(ServiceError::Conflict { .. })
        ),
        "one next certificate at a time"
    );
    app.saml
        .activate_application_certificate(&ctx, id, &first.thumbprint)
        .await
        .unwrap();
    assert_eq!(
        metadata_signer(
            &metadata_now().await,
            &[&tenant_certificate, &first.certificate]
        ),
        (Some(1), vec![first.certificate.clone()]),
        "the application's own signs, and only it is published"
    );
    // A rollover of the application's own.
    let second = app
        .saml
        .add_application_certificate(&ctx, id)
        .await
        .unwrap();
    assert_eq!(
        metadata_signer(
            &metadata_now().await,
            &[&first.certificate, &second.certificate]
        ),
        (
            Some(0),
            vec![first.certificate.clone(), second.certificate.clone()]
        ),
    );
    assert!(
        matches!(
            app.saml
                .remove_application_certificate(&ctx, id, &first.thumbprint, None)
                .await,
            Err(ServiceError::Conflict { .. })
        ),
        "the active certificate stays while a next one waits"
    );
    let activated = app
        .saml
        .activate_application_certificate(&ctx, id, &second.thumbprint)
        .await
        .unwrap();
    assert_eq!(activated.state, CertificateState::Active);
    let listed = app.saml.application_certificates(&ctx, id).await.unwrap();
    assert_eq!(listed.len(), 1, "the replaced certificate is gone");
    assert_eq!(listed[0].thumbprint, second.thumbprint);
    assert_eq!(
        metadata_signer(
            &metadata_now().await,
            &[&first.certificate, &second.certificate]
        ),
        (Some(1), vec![second.certificate.clone()])
    );
    assert!(matches!(
        app.saml
            .activate_application_certificate(&ctx, id, "0000")
            .await,
        Err(ServiceError::NotFound { .. })
    ));
    // Removed as seen: the version the page showed when it was the next one is
    // stale now that it signs.
    assert!(matches!(
        app.saml
            .remove_application_certificate(&ctx, id, &second.thumbprint, Some(second.version))
            .await,
        Err(ServiceError::VersionMismatch { .. })
    ));
    app.saml
        .remove_application_certificate(&ctx, id, &second.thumbprint, Some(activated.version))
        .await
        .unwrap();
    assert_eq!(
        metadata_signer(&metadata_now().await, &[&tenant_certificate]).0,
        Some(0),
        "back to the tenant's certificate"
    );
    // Removing the SAML configuration removes the application's certificates.
    app.saml
        .add_application_certificate(&ctx, id)
        .await
        .unwrap();
    app.saml.remove(&ctx, id, None).await.unwrap();
    assert!(
        app.saml
            .application_certificates(&ctx, id)
            .await
            .unwrap()
            .is_empty()
    );
    let audit = serde_json::to_string(
        &app.directory
            .query_audit(&ctx, &Default::default())
            .await
            .unwrap(),
    )
    .unwrap();
    for action in ["samlKey.add", "samlKey.activate", "samlKey.remove"] {
        assert!(audit.contains(action), "{action} is audited");
    }
}

async fn custom_security_attributes_are_mapped_only_by_their_readers(app: App) {
    let admin = bootstrap_admin(&app).await;
    let created = app
        .directory
        .create_application(&admin.ctx, json!({"displayName": "Badges"}))
        .await
        .unwrap();
    let mut body = settings("https://badges.example");
    body["attributes"] = json!([
        {"name": "costCenter", "source": {"kind": "customSecurityAttribute", "set": "hr", "name": "costCenter"}},
        {"name": "login", "source": {"kind": "expression", "expression": {"op": "lowercase", "of": {"op": "attribute", "attribute": "userPrincipalName"}}}}
    ]);
    assert!(
        matches!(
            app.saml
                .configure(&admin.ctx, created.id, body.clone(), None)
                .await,
            Err(ServiceError::Forbidden { .. })
        ),
        "a Global Administrator may not read custom security attributes"
    );
    assert!(
        app.saml
            .configuration(&admin.ctx, created.id)
            .await
            .unwrap()
            .is_none(),
        "nothing was stored"
    );
    app.directory
        .create_role_assignment(
            &admin.ctx,
            json!({
                "principalId": admin.user_id,
                "roleDefinitionId": tessera_directory::roles::ATTRIBUTE_ASSIGNMENT_ADMINISTRATOR
            }),
        )
        .await
        .unwrap();
    let reader = tessera_testkit::fixtures::token_context(&app, &admin.token).await;
    app.saml
        .configure(&reader, created.id, body, None)
        .await
        .unwrap();
}

both_backends!(
    setup = app;
    custom_security_attributes_are_mapped_only_by_their_readers,
    configurations_are_checked_stored_and_removed,
    metadata_is_signed_with_the_tenant_certificate,
    application_certificates_roll_over
);
