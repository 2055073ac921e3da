//! The pages' HTML: askama templates, compiled into the binary and checked at build
//! time. The template files are in `crates/tessera-server/templates/`: `base.html`
//! is the layout every page extends, `partials/forms.html` holds the pieces pages
//! repeat (anti-forgery field, hidden fields, one-button forms, error block).
//!
//! Every value a template prints is escaped by [`Html`] (configured for `.html`
//! templates in `askama.toml`), in text and in attributes alike; no template marks a
//! value as safe. One struct per page below holds what that page shows.

use std::fmt;

use askama::Template;
use tessera_authn::strength::Mode;
use tessera_service::authn::{
    AuthMethodView, FlowStep, FlowView, SessionInfo, SessionView, TotpEnrolment,
};
use tessera_service::oauth::TermsToAccept;

use super::mode_label;

/// The escaper of every `.html` template: `&`, `<`, `>`, `"` and `'` become
/// entities, so a value is safe in text and in a quoted attribute. The entities are
/// the named ones (`&amp;`, not askama's `&#38;`): a refresh URL's `&` reads as
/// `&amp;` to the clients that look into the page (`e2e/oauth.mjs`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Html;

impl askama::filters::Escaper for Html {
    fn write_escaped_str<W: fmt::Write>(&self, mut dest: W, text: &str) -> fmt::Result {
        let mut rest = text;
        while let Some(at) = rest.find(['&', '<', '>', '"', '\'']) {
            let (plain, special) = rest.split_at(at);
            dest.write_str(plain)?;
            let mut chars = special.chars();
            dest.write_str(match chars.next() {
                Some('&') => "&amp;",
                Some('<') => "&lt;",
                Some('>') => "&gt;",
                Some('"') => "&quot;",
                _ => "&#39;", // the only one left: '
            })?;
            rest = chars.as_str();
        }
        dest.write_str(rest)
    }
}

/// An error page: one message.
#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage<'a> {
    pub csrf: &'a str,
    pub message: &'a str,
}

/// Goes on to `to` by a refresh (see [`super::navigate`]).
#[derive(Template)]
#[template(path = "navigate.html")]
pub struct Navigate<'a> {
    pub to: &'a str,
}

/// The end of something, in one sentence; `title` is also the heading.
#[derive(Template)]
#[template(path = "result.html")]
pub struct ResultPage<'a> {
    pub csrf: &'a str,
    pub title: &'a str,
    pub message: &'a str,
}

/// A sign-in flow's current step.
#[derive(Template)]
#[template(path = "sign_in.html")]
pub struct SignIn<'a> {
    pub csrf: &'a str,
    pub view: &'a FlowView,
    /// The name the user gave (empty before the first step).
    pub user_name: &'a str,
}

impl<'a> SignIn<'a> {
    pub fn new(view: &'a FlowView) -> SignIn<'a> {
        SignIn {
            csrf: &view.csrf,
            view,
            user_name: view.user_name.as_deref().unwrap_or_default(),
        }
    }
}

/// A signed-in user's methods and sessions.
#[derive(Template)]
#[template(path = "security_info.html")]
pub struct SecurityInfo<'a> {
    pub csrf: &'a str,
    pub user: &'a str,
    /// How this session signed in (`Password + Authenticator app code`).
    pub signed_in_with: String,
    pub methods: &'a [AuthMethodView],
    pub sessions: &'a [SessionView],
    pub notice: Option<&'a str>,
    pub error: Option<&'a str>,
}

impl<'a> SecurityInfo<'a> {
    pub fn new(
        session: &'a SessionInfo,
        methods: &'a [AuthMethodView],
        sessions: &'a [SessionView],
        notice: Option<&'a str>,
        error: Option<&'a str>,
    ) -> SecurityInfo<'a> {
        SecurityInfo {
            csrf: &session.csrf,
            user: &session.user_principal_name,
            signed_in_with: session
                .methods
                .iter()
                .map(|m| mode_label(m.method.mode))
                .collect::<Vec<_>>()
                .join(" + "),
            methods,
            sessions,
            notice,
            error,
        }
    }
}

/// Adding an authenticator app: the QR code and the key.
#[derive(Template)]
#[template(path = "totp_enrolment.html")]
pub struct TotpEnrolmentPage<'a> {
    pub csrf: &'a str,
    /// The QR code's SVG in base64, for a `data:` URL.
    pub qr_base64: String,
    pub secret: &'a str,
    pub error: Option<&'a str>,
}

impl<'a> TotpEnrolmentPage<'a> {
    pub fn new(
        session: &'a SessionInfo,
        enrolment: &'a TotpEnrolment,
        error: Option<&'a str>,
    ) -> TotpEnrolmentPage<'a> {
        use base64::Engine as _;
        TotpEnrolmentPage {
            csrf: &session.csrf,
            qr_base64: base64::engine::general_purpose::STANDARD
                .encode(enrolment.qr_svg.as_bytes()),
            secret: &enrolment.secret,
            error,
        }
    }
}

/// RP-Initiated Logout without a valid hint: the user confirms.
#[derive(Template)]
#[template(path = "logout_confirm.html")]
pub struct LogoutConfirm<'a> {
    pub csrf: &'a str,
    pub user: &'a str,
    /// The logout request's parameters, passed on to the confirmation.
    pub fields: Vec<(&'a str, &'a str)>,
}

/// Conditional Access blocked the application.
#[derive(Template)]
#[template(path = "blocked.html")]
pub struct Blocked<'a> {
    pub csrf: &'a str,
    pub app: &'a str,
    pub reason: &'a str,
    pub correlation_id: &'a str,
}

/// Terms of use to accept before the application.
#[derive(Template)]
#[template(path = "terms.html")]
pub struct Terms<'a> {
    /// Where the answer goes (the protocol's endpoint).
    pub action: &'a str,
    pub csrf: &'a str,
    pub app: &'a str,
    pub terms: &'a [TermsToAccept],
    /// The tie to the waiting authorization request.
    pub request: &'a str,
}

/// A password change to make before the application.
#[derive(Template)]
#[template(path = "change_password.html")]
pub struct ChangePassword<'a> {
    /// Where the answer goes (the protocol's endpoint).
    pub action: &'a str,
    pub csrf: &'a str,
    pub app: &'a str,
    /// The tie to the waiting authorization request.
    pub request: &'a str,
}

/// Allow or deny an application the scopes it asks for.
#[derive(Template)]
#[template(path = "consent.html")]
pub struct Consent<'a> {
    pub csrf: &'a str,
    pub app: &'a str,
    pub scopes: &'a [String],
    /// The tie to the waiting authorization request.
    pub request: &'a str,
}

/// The form that posts an authorization response to the client.
#[derive(Template)]
#[template(path = "form_post.html")]
pub struct FormPost<'a> {
    pub csrf: &'a str,
    /// The client's redirect URI.
    pub action: &'a str,
    pub fields: Vec<(&'a str, &'a str)>,
}

/// `/device`: the code to type.
#[derive(Template)]
#[template(path = "device_code.html")]
pub struct DeviceCode<'a> {
    pub csrf: &'a str,
    pub code: &'a str,
    pub error: Option<&'a str>,
}

/// `/device`: approve or deny the device's request.
#[derive(Template)]
#[template(path = "device_approve.html")]
pub struct DeviceApprove<'a> {
    pub csrf: &'a str,
    pub app: &'a str,
    pub user: &'a str,
    pub scopes: &'a [String],
    pub user_code: &'a str,
    /// The device asks for a stronger sign-in than an ordinary one.
    pub steps_up: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use askama::filters::Escaper as _;

    fn escape(text: &str) -> String {
        let mut out = String::new();
        super::Html.write_escaped_str(&mut out, text).unwrap();
        out
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
        assert_eq!(escape("é 𝄞 plain"), "é 𝄞 plain");
    }

    const HOSTILE: &str = "\"'><script>alert(1)</script>&";
    const ESCAPED: &str = "&quot;&#39;&gt;&lt;script&gt;alert(1)&lt;/script&gt;&amp;";

    /// The page has the value only escaped, in text and in attributes.
    fn escaped(page: String, times: usize) {
        assert!(!page.contains("<script>"), "{page}");
        assert!(!page.contains("\"'"), "{page}");
        assert_eq!(page.matches(ESCAPED).count(), times, "{page}");
    }

    #[test]
    fn pages_escape_what_they_print() {
        let view = FlowView {
            step: FlowStep::Credentials,
            user_name: Some(HOSTILE.to_string()),
            offers: vec![Mode::Password, Mode::SoftwareOath],
            error: Some("That did not work."),
            csrf: HOSTILE.to_string(),
            certificate: true,
            notice: None,
        };
        // The token in the meta tag and in four forms, the name twice.
        escaped(SignIn::new(&view).render().unwrap(), 7);
        let hostile = [HOSTILE.to_string()];
        let pages = [
            (
                ErrorPage {
                    csrf: "",
                    message: HOSTILE,
                }
                .render(),
                1,
            ),
            (
                ResultPage {
                    csrf: HOSTILE,
                    title: "Done",
                    message: HOSTILE,
                }
                .render(),
                2,
            ),
            (
                DeviceCode {
                    csrf: HOSTILE,
                    code: HOSTILE,
                    error: Some(HOSTILE),
                }
                .render(),
                4,
            ),
            (
                DeviceApprove {
                    csrf: HOSTILE,
                    app: HOSTILE,
                    user: HOSTILE,
                    scopes: &hostile,
                    user_code: HOSTILE,
                    steps_up: true,
                }
                .render(),
                7,
            ),
            (
                Consent {
                    csrf: HOSTILE,
                    app: HOSTILE,
                    scopes: &hostile,
                    request: HOSTILE,
                }
                .render(),
                6,
            ),
            (
                ChangePassword {
                    action: HOSTILE,
                    csrf: HOSTILE,
                    app: HOSTILE,
                    request: HOSTILE,
                }
                .render(),
                5,
            ),
            (
                Blocked {
                    csrf: "",
                    app: HOSTILE,
                    reason: HOSTILE,
                    correlation_id: HOSTILE,
                }
                .render(),
                3,
            ),
            (
                LogoutConfirm {
                    csrf: HOSTILE,
                    user: HOSTILE,
                    fields: vec![("state", HOSTILE)],
                }
                .render(),
                4,
            ),
            (
                FormPost {
                    csrf: "",
                    action: HOSTILE,
                    fields: vec![("state", HOSTILE)],
                }
                .render(),
                2,
            ),
        ];
        for (page, times) in pages {
            escaped(page.unwrap(), times);
        }
    }

    #[test]
    fn a_refresh_keeps_its_query() {
        let page = Navigate {
            to: "https://app.example/cb?code=a&state=b",
        }
        .render()
        .unwrap();
        assert!(page.contains(
            "<meta http-equiv=\"refresh\" content=\"0;url=https://app.example/cb?code=a&amp;state=b\">"
        ));
        assert!(
            page.contains("<a id=\"continue\" href=\"https://app.example/cb?code=a&amp;state=b\">")
        );
        assert!(
            !page.contains("tessera.js"),
            "the refresh page has no script"
        );
    }
}
