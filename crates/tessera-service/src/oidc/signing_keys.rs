//! Token signing keys per tenant: stored as directory records with the private key
//! sealed under the installation's sealing key, rotated on the schedule of
//! `tessera_oauth::rotation` inside one audited write transaction (so on several
//! nodes exactly one makes each change), and cached in memory for signing.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use tessera_directory::audit_action::AuditAction;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tessera_core::{TenantId, Timestamp};
use tessera_oauth::keys::{self, Algorithm, SigningKey};
use tessera_oauth::rotation::{self, Action, KeyInfo, Policy, State};
use tessera_store::{Kind, Reader, Record};
use uuid::Uuid;

use crate::codec::{self, Keys};
use crate::error::{ServiceError, ServiceResult};
use crate::{EventDraft, Oidc};

/// How long a cached key set is trusted before it is read again (other nodes'
/// rotations become visible within this; keys are published a day ahead of use).
const CACHE_SECONDS: i64 = 60;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyData {
    alg: Algorithm,
    state: State,
    since: Timestamp,
    /// PKCS#8, sealed (AES-256-GCM, the kid as associated data).
    sealed_private_key: String,
    public_jwk: Value,
}

/// A tenant's keys: the signing key per algorithm and the published set.
pub struct KeySet {
    pub signing: HashMap<Algorithm, Arc<SigningKey>>,
    pub jwks: Value,
    loaded: Timestamp,
}

#[derive(Default)]
pub(crate) struct KeyCache {
    sets: RwLock<HashMap<TenantId, Arc<KeySet>>>,
}

fn sealed_context(kid: &str) -> String {
    format!("signing-key:{kid}")
}

impl Oidc {
    /// Applies the rotation plan for `algorithms` now; returns what was done.
    pub async fn rotate_signing_keys(
        &self,
        tenant: TenantId,
        algorithms: &[Algorithm],
    ) -> ServiceResult<Vec<String>> {
        let ctx = crate::kernel::system_context(tenant, "signing key rotation");
        let mut tx = self.write(&ctx).await?;
        let records = codec::list_all(tx.as_mut(), tenant, Kind::SigningKey, None).await?;
        let mut infos = Vec::new();
        let mut by_kid = HashMap::new();
        for record in &records {
            let data: KeyData = codec::data(record)?;
            let kid = record.key1.clone().unwrap_or_default();
            infos.push(KeyInfo {
                kid: kid.clone(),
                alg: data.alg,
                state: data.state,
                since: data.since.unix_seconds(),
            });
            by_kid.insert(kid, (record.clone(), data));
        }
        let now = self.now();
        let actions = rotation::plan(&infos, algorithms, now.unix_seconds(), &Policy::default());
        if actions.is_empty() {
            return Ok(Vec::new());
        }
        let mut done = Vec::new();
        for action in actions {
            match action {
                Action::Generate { alg, current } => {
                    let (pkcs8, key) =
                        keys::generate(alg).map_err(|e| ServiceError::Internal(e.to_string()))?;
                    let sealed = self
                        .settings
                        .sealing_key
                        .seal(&pkcs8, &sealed_context(&key.kid))
                        .map_err(|e| ServiceError::Internal(e.to_string()))?;
                    let data = KeyData {
                        alg,
                        state: if current { State::Current } else { State::Next },
                        since: now,
                        sealed_private_key: sealed,
                        public_jwk: key.public_jwk(),
                    };
                    let record = codec::new_record(
                        Kind::SigningKey,
                        Uuid::new_v4(),
                        now,
                        Keys {
                            key1: Some(key.kid.clone()),
                            key2: None,
                            sort_key: key.kid.clone(),
                        },
                        &data,
                    )?;
                    tx.insert(tenant, &record).await?;
                    done.push(format!(
                        "generated {} key {} ({:?})",
                        alg.as_str(),
                        key.kid,
                        data.state
                    ));
                    self.audit(
                        tx.as_mut(),
                        &ctx,
                        EventDraft::new(AuditAction::SigningKeyGenerate)
                            .on(Kind::SigningKey, record.id, &key.kid)
                            .details(json!({ "alg": alg.as_str(), "state": data.state })),
                    )
                    .await?;
                }
                Action::Activate { kid } | Action::Retire { kid } | Action::Delete { kid }
                    if !by_kid.contains_key(&kid) =>
                {
                    return Err(ServiceError::Internal(format!(
                        "rotation names an unknown key {kid}"
                    )));
                }
                Action::Activate { kid } => {
                    self.set_key_state(tx.as_mut(), &ctx, &by_kid[&kid], State::Current, now)
                        .await?;
                    done.push(format!("activated {kid}"));
                }
                Action::Retire { kid } => {
                    self.set_key_state(tx.as_mut(), &ctx, &by_kid[&kid], State::Retired, now)
                        .await?;
                    done.push(format!("retired {kid}"));
                }
                Action::Delete { kid } => {
                    let (record, _) = &by_kid[&kid];
                    tx.delete(tenant, Kind::SigningKey, record.id, None).await?;
                    self.audit(
                        tx.as_mut(),
                        &ctx,
                        EventDraft::new(AuditAction::SigningKeyDelete).on(
                            Kind::SigningKey,
                            record.id,
                            &kid,
                        ),
                    )
                    .await?;
                    done.push(format!("deleted {kid}"));
                }
            }
        }
        tx.commit().await?;
        self.forget_key_set(tenant)?;
        tracing::info!(%tenant, actions = ?done, "signing keys rotated");
        Ok(done)
    }

    async fn set_key_state(
        &self,
        tx: &mut dyn tessera_store::WriteTx,
        ctx: &crate::Context,
        (record, data): &(Record, KeyData),
        state: State,
        now: Timestamp,
    ) -> ServiceResult<()> {
        let mut data = data.clone();
        let before = data.state;
        data.state = state;
        data.since = now;
        let updated = codec::next_version(
            record,
            now,
            Keys {
                key1: record.key1.clone(),
                key2: None,
                sort_key: record.sort_key.clone(),
            },
            &data,
        )?;
        tx.update(ctx.tenant, &updated).await?;
        let kid = record.key1.clone().unwrap_or_default();
        self.audit(
            tx,
            ctx,
            EventDraft::new(AuditAction::SigningKeyState)
                .on(Kind::SigningKey, record.id, &kid)
                .details(json!({ "from": before, "to": state })),
        )
        .await
    }

    /// Drops this node's cached key set of a tenant, so the next use reads it again.
    pub(crate) fn forget_key_set(&self, tenant: TenantId) -> ServiceResult<()> {
        self.keys
            .sets
            .write()
            .map_err(|_| ServiceError::Internal("key cache poisoned".into()))?
            .remove(&tenant);
        Ok(())
    }

    /// The tenant's key set (from the cache when fresh).
    pub async fn key_set(&self, tenant: TenantId) -> ServiceResult<Arc<KeySet>> {
        let now = self.now();
        if let Some(set) = self
            .keys
            .sets
            .read()
            .map_err(|_| ServiceError::Internal("key cache poisoned".into()))?
            .get(&tenant)
            && now.unix_seconds() - set.loaded.unix_seconds() < CACHE_SECONDS
        {
            return Ok(set.clone());
        }
        let mut reader = self.reader().await?;
        let set = Arc::new(self.load_key_set(reader.as_mut(), tenant, now).await?);
        self.keys
            .sets
            .write()
            .map_err(|_| ServiceError::Internal("key cache poisoned".into()))?
            .insert(tenant, set.clone());
        Ok(set)
    }

    async fn load_key_set(
        &self,
        reader: &mut dyn Reader,
        tenant: TenantId,
        now: Timestamp,
    ) -> ServiceResult<KeySet> {
        let mut signing = HashMap::new();
        let mut published = Vec::new();
        for record in codec::list_all(reader, tenant, Kind::SigningKey, None).await? {
            let data: KeyData = codec::data(&record)?;
            let kid = record.key1.clone().unwrap_or_default();
            published.push(data.public_jwk.clone());
            if data.state == State::Current {
                let pkcs8 = self
                    .settings
                    .sealing_key
                    .open(&data.sealed_private_key, &sealed_context(&kid))
                    .map_err(|_| ServiceError::Internal(format!("signing key {kid} cannot be opened with this installation's sealing key")))?;
                let key = keys::load(data.alg, &pkcs8)
                    .map_err(|e| ServiceError::Internal(e.to_string()))?;
                signing.insert(data.alg, Arc::new(key));
            }
        }
        published.sort_by(|a, b| a["kid"].as_str().cmp(&b["kid"].as_str()));
        Ok(KeySet {
            signing,
            jwks: json!({ "keys": published }),
            loaded: now,
        })
    }

    /// The published JWKS of a tenant.
    pub async fn jwks(&self, tenant: TenantId) -> ServiceResult<Value> {
        Ok(self.key_set(tenant).await?.jwks.clone())
    }
}
