//! The facts of a sign-in as the flows gather them (owned, so they can be built
//! up from the directory and kept), which the engine reads as a [`SignIn`]; and
//! the platform a sign-in comes from, read from its registered device or its
//! User-Agent.

use std::net::IpAddr;

use tessera_directory::model::DeviceSpec;
use uuid::Uuid;

use crate::engine::{ClientApp, Proof, SignIn, Subject, Target};
use crate::model::{Platform, RiskLevel};

/// Who is signing in, with what the directory says about them.
#[derive(Debug, Clone)]
pub enum FactSubject {
    User {
        id: Uuid,
        /// Directory role template ids the user holds.
        roles: Vec<Uuid>,
        guest: bool,
        risk: RiskLevel,
        /// Whether the user has a second factor registered (security defaults).
        has_mfa_method: bool,
        /// Groups the user is in at this moment through PIM, with the groups
        /// that contain them (see `Subject::User`).
        groups: Vec<Uuid>,
    },
    Workload {
        service_principal_id: Uuid,
        risk: RiskLevel,
    },
}

/// What a sign-in brings, gathered by the flows.
#[derive(Debug, Clone)]
pub struct SignInFacts {
    pub subject: FactSubject,
    pub target: Target,
    /// Authentication contexts asked for (`c1`..).
    pub auth_contexts: Vec<String>,
    pub client_app: ClientApp,
    pub platform: Option<Platform>,
    pub ip: Option<IpAddr>,
    /// ISO country code of `ip`.
    pub country: Option<[u8; 2]>,
    /// The registered device, by its id.
    pub device: Option<(Uuid, DeviceSpec)>,
    pub sign_in_risk: RiskLevel,
    pub device_code_flow: bool,
    /// Authentication strengths the sign-in satisfies.
    pub strengths: Vec<Uuid>,
    /// Seconds since the user last signed in interactively.
    pub auth_age_seconds: Option<i64>,
    /// The password was changed in this sign-in.
    pub password_changed: bool,
    /// Terms of use the user has accepted (current versions).
    pub accepted_terms: Vec<Uuid>,
}

impl SignInFacts {
    /// The sign-in as the engine evaluates it. A guest is an internal guest.
    pub fn sign_in(&self) -> SignIn<'_> {
        SignIn {
            subject: match &self.subject {
                FactSubject::User {
                    id,
                    roles,
                    guest,
                    risk,
                    has_mfa_method,
                    groups,
                } => Subject::User {
                    id: *id,
                    roles,
                    guest: guest.then_some("internalGuest"),
                    risk: *risk,
                    has_mfa_method: *has_mfa_method,
                    groups,
                },
                FactSubject::Workload {
                    service_principal_id,
                    risk,
                } => Subject::Workload {
                    service_principal_id: *service_principal_id,
                    risk: *risk,
                },
            },
            target: self.target,
            auth_contexts: &self.auth_contexts,
            client_app: self.client_app,
            platform: self.platform,
            ip: self.ip,
            country: self.country,
            device: self.device.as_ref().map(|(id, d)| (*id, d)),
            sign_in_risk: self.sign_in_risk,
            device_code_flow: self.device_code_flow,
            proof: Proof {
                strengths: &self.strengths,
                auth_age_seconds: self.auth_age_seconds,
                password_changed: self.password_changed,
                accepted_terms: &self.accepted_terms,
            },
        }
    }
}

/// The platform a User-Agent names, for sign-ins from unregistered devices.
pub fn platform_from_user_agent(user_agent: &str) -> Option<Platform> {
    let ua = user_agent.to_ascii_lowercase();
    if ua.contains("windows phone") {
        Some(Platform::WindowsPhone)
    } else if ua.contains("android") {
        Some(Platform::Android)
    } else if ua.contains("iphone") || ua.contains("ipad") || ua.contains("ipod") {
        Some(Platform::IOs)
    } else if ua.contains("windows") {
        Some(Platform::Windows)
    } else if ua.contains("mac os x") || ua.contains("macintosh") {
        Some(Platform::MacOs)
    } else if ua.contains("linux") || ua.contains("cros") || ua.contains("x11") {
        Some(Platform::Linux)
    } else {
        None
    }
}

/// The platform of a sign-in: the registered device's operating system, else the
/// User-Agent's.
pub fn platform_of(device: Option<&DeviceSpec>, user_agent: Option<&str>) -> Option<Platform> {
    device
        .and_then(platform_of_device)
        .or_else(|| user_agent.and_then(platform_from_user_agent))
}

/// The platform a device record names.
fn platform_of_device(device: &DeviceSpec) -> Option<Platform> {
    device
        .operating_system
        .as_deref()
        .and_then(platform_from_user_agent)
        .or_else(|| {
            device.operating_system.as_deref().and_then(|os| {
                let os = os.to_ascii_lowercase();
                if os.contains("ios") || os.contains("ipados") {
                    Some(Platform::IOs)
                } else if os.contains("macos") {
                    Some(Platform::MacOs)
                } else {
                    None
                }
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_from_user_agents() {
        let cases = [
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120",
                Some(Platform::Windows),
            ),
            (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_1) AppleWebKit/605.1.15 Safari/605.1.15",
                Some(Platform::MacOs),
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148",
                Some(Platform::IOs),
            ),
            (
                "Mozilla/5.0 (Linux; Android 14; Pixel 8) Chrome/120 Mobile",
                Some(Platform::Android),
            ),
            (
                "Mozilla/5.0 (X11; Linux x86_64) HeadlessChrome/120",
                Some(Platform::Linux),
            ),
            ("curl/8.4.0", None),
        ];
        for (ua, expected) in cases {
            assert_eq!(platform_from_user_agent(ua), expected, "{ua}");
        }
    }

    fn device(operating_system: &str) -> DeviceSpec {
        serde_json::from_value(serde_json::json!({
            "displayName": "Laptop",
            "operatingSystem": operating_system,
        }))
        .unwrap()
    }

    #[test]
    fn a_registered_device_names_the_platform_before_the_user_agent() {
        let android = Some("Mozilla/5.0 (Linux; Android 14; Pixel 8)");
        assert_eq!(
            platform_of(Some(&device("Windows")), android),
            Some(Platform::Windows)
        );
        assert_eq!(
            platform_of(Some(&device("iPadOS")), None),
            Some(Platform::IOs)
        );
        assert_eq!(
            platform_of(Some(&device("macOS")), None),
            Some(Platform::MacOs)
        );
        // A device whose system names no platform leaves it to the User-Agent.
        assert_eq!(
            platform_of(Some(&device("Plan 9")), android),
            Some(Platform::Android)
        );
        assert_eq!(platform_of(None, android), Some(Platform::Android));
        assert_eq!(platform_of(None, None), None);
    }

    #[test]
    fn facts_read_as_the_engine_sees_them() {
        let facts = SignInFacts {
            subject: FactSubject::User {
                id: Uuid::from_u128(1),
                roles: vec![Uuid::from_u128(2)],
                guest: true,
                risk: RiskLevel::Low,
                has_mfa_method: true,
                groups: Vec::new(),
            },
            target: Target::App {
                app_id: tessera_core::AppId::from_uuid(Uuid::from_u128(3)),
                resource: None,
                admin_portal: false,
            },
            auth_contexts: vec!["c1".to_string()],
            client_app: ClientApp::Browser,
            platform: Some(Platform::Linux),
            ip: None,
            country: Some(*b"NL"),
            device: Some((Uuid::from_u128(4), device("Linux"))),
            sign_in_risk: RiskLevel::None,
            device_code_flow: false,
            strengths: vec![Uuid::from_u128(5)],
            auth_age_seconds: Some(60),
            password_changed: true,
            accepted_terms: vec![Uuid::from_u128(6)],
        };
        let sign_in = facts.sign_in();
        let Subject::User {
            id, roles, guest, ..
        } = sign_in.subject
        else {
            panic!("a user signs in");
        };
        assert_eq!(id, Uuid::from_u128(1));
        assert_eq!(roles, [Uuid::from_u128(2)]);
        assert_eq!(guest, Some("internalGuest"));
        assert_eq!(sign_in.auth_contexts, ["c1"]);
        assert_eq!(sign_in.device.map(|(id, _)| id), Some(Uuid::from_u128(4)));
        assert_eq!(sign_in.proof.strengths, [Uuid::from_u128(5)]);
        assert_eq!(sign_in.proof.auth_age_seconds, Some(60));
        assert!(sign_in.proof.password_changed);
        assert_eq!(sign_in.proof.accepted_terms, [Uuid::from_u128(6)]);
    }
}
