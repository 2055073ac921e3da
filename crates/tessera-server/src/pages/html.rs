//! HTML for the pages. Every value that came from a person or the database goes
//! through [`escape`].

use std::fmt::Write as _;

use base64::Engine as _;
use tessera_authn::strength::Mode;
use tessera_service::authn::{
    AuthMethodView, FlowStep, FlowView, SessionInfo, SessionView, TotpEnrolment,
};

use super::{is_second_step, mode_label};

pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

pub fn layout(title: &str, csrf: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<meta name=\"csrf\" content=\"{}\"><title>{}</title>\
<link rel=\"stylesheet\" href=\"/assets/tessera.css\"><script src=\"/assets/tessera.js\" defer></script>\
</head><body><main>{}</main></body></html>",
        escape(csrf),
        escape(title),
        body
    )
}

fn hidden_csrf(csrf: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        escape(csrf)
    )
}

fn error_box(error: Option<&str>) -> String {
    match error {
        Some(message) => format!(
            "<p class=\"error\" role=\"alert\" id=\"error\">{}</p>",
            escape(message)
        ),
        None => String::new(),
    }
}

const PASSKEY_ERROR: &str = "<p class=\"error\" role=\"alert\" id=\"passkey-error\" hidden></p>";

pub fn sign_in(view: &FlowView) -> String {
    let csrf = hidden_csrf(&view.csrf);
    let mut body = String::from("<h1>Sign in</h1>");
    body.push_str(&error_box(view.error));
    body.push_str(PASSKEY_ERROR);
    match view.step {
        FlowStep::Identify => {
            let _ = write!(
                body,
                "<form method=\"post\" action=\"/signin/name\">{csrf}\
<label for=\"username\">User name</label>\
<input type=\"text\" id=\"username\" name=\"username\" autocomplete=\"username webauthn\" autofocus required>\
<button type=\"submit\" id=\"next\">Next</button></form>\
<p class=\"or\">or</p><button type=\"button\" class=\"secondary\" id=\"passkey-signin\">Sign in with a passkey</button>"
            );
            body.push_str(&certificate_button(view, &csrf));
        }
        FlowStep::Credentials | FlowStep::SecondFactor => {
            let name = view.user_name.as_deref().unwrap_or_default();
            let _ = write!(
                body,
                "<p>Signing in as <strong id=\"signing-in-as\">{}</strong></p>",
                escape(name)
            );
            if let Some(notice) = view.notice {
                let _ = write!(
                    body,
                    "<p class=\"notice\" id=\"step-up\">{}</p>",
                    escape(notice)
                );
            } else if is_second_step(view) {
                body.push_str("<p>Your account needs a second step.</p>");
            }
            for mode in &view.offers {
                match mode {
                    Mode::Password => {
                        let _ = write!(
                            body,
                            "<form method=\"post\" action=\"/signin/password\">{csrf}\
<input type=\"text\" name=\"username\" value=\"{}\" autocomplete=\"username\" hidden>\
<label for=\"password\">Password</label>\
<input type=\"password\" id=\"password\" name=\"secret\" autocomplete=\"current-password\" autofocus required>\
<button type=\"submit\" id=\"signin\">Sign in</button></form>",
                            escape(name)
                        );
                    }
                    Mode::TemporaryAccessPassOneTime | Mode::TemporaryAccessPassMultiUse => {
                        let _ = write!(
                            body,
                            "<form method=\"post\" action=\"/signin/pass\">{csrf}\
<label for=\"pass\">Temporary Access Pass</label>\
<input type=\"password\" id=\"pass\" name=\"secret\" autocomplete=\"one-time-code\" required>\
<button type=\"submit\" id=\"use-pass\">Sign in with the pass</button></form>"
                        );
                    }
                    Mode::SoftwareOath => {
                        let _ = write!(
                            body,
                            "<form method=\"post\" action=\"/signin/code\">{csrf}\
<label for=\"code\">Code from your authenticator app</label>\
<input type=\"text\" id=\"code\" name=\"secret\" inputmode=\"numeric\" autocomplete=\"one-time-code\" pattern=\"[0-9]{{6,8}}\" autofocus required>\
<button type=\"submit\" id=\"verify\">Verify</button></form>"
                        );
                    }
                    _ => {}
                }
            }
            body.push_str("<p class=\"or\">or</p><button type=\"button\" class=\"secondary\" id=\"passkey-signin\">Use a passkey</button>");
            body.push_str(&certificate_button(view, &csrf));
            let _ = write!(
                body,
                "<form method=\"post\" action=\"/signin/restart\">{csrf}<button type=\"submit\" class=\"secondary\" id=\"restart\">Use another account</button></form>"
            );
        }
    }
    layout("Sign in - Tessera", &view.csrf, &body)
}

fn certificate_button(view: &FlowView, csrf: &str) -> String {
    if !view.certificate {
        return String::new();
    }
    format!(
        "<form method=\"post\" action=\"/signin/certificate\">{csrf}<button type=\"submit\" class=\"secondary\" id=\"certificate-signin\">Use a certificate or smart card</button></form>"
    )
}

pub fn security_info(
    session: &SessionInfo,
    methods: &[AuthMethodView],
    sessions: &[SessionView],
    notice: Option<&str>,
    error: Option<&str>,
) -> String {
    let csrf = hidden_csrf(&session.csrf);
    let mut body = String::new();
    let _ = write!(
        body,
        "<h1>Security info</h1><p>Signed in as <strong id=\"user\">{}</strong> with {}.</p>",
        escape(&session.user_principal_name),
        escape(
            &session
                .methods
                .iter()
                .map(|m| mode_label(m.method.mode))
                .collect::<Vec<_>>()
                .join(" + ")
        )
    );
    if let Some(notice) = notice {
        let _ = write!(
            body,
            "<p class=\"notice\" role=\"status\">{}</p>",
            escape(notice)
        );
    }
    body.push_str(&error_box(error));
    body.push_str(PASSKEY_ERROR);
    body.push_str("<h2>Your sign-in methods</h2><table id=\"methods\"><tr><th>Method</th><th>Name</th><th></th></tr>");
    for method in methods {
        let _ = write!(
            body,
            "<tr data-type=\"{}\"><td>{}</td><td>{}</td><td><form method=\"post\" action=\"/security-info/methods/{}/delete\">{csrf}<button type=\"submit\" class=\"secondary\">Remove</button></form></td></tr>",
            escape(&method.method_type),
            escape(&method.method_type),
            escape(&method.display_name),
            method.id
        );
    }
    body.push_str("</table>");
    let _ = write!(
        body,
        "<h2>Add a method</h2>\
<label for=\"passkey-name\">Passkey name</label><input type=\"text\" id=\"passkey-name\" value=\"Passkey\">\
<button type=\"button\" id=\"passkey-register\">Add a passkey</button>\
<form method=\"post\" action=\"/security-info/totp\">{csrf}<button type=\"submit\" id=\"add-totp\">Add an authenticator app</button></form>\
<h2>Password</h2><form method=\"post\" action=\"/security-info/password\">{csrf}\
<label for=\"current\">Current password (if you have one)</label><input type=\"password\" id=\"current\" name=\"current\" autocomplete=\"current-password\">\
<label for=\"new\">New password</label><input type=\"password\" id=\"new\" name=\"new\" autocomplete=\"new-password\" required>\
<button type=\"submit\" id=\"set-password\">Set password</button></form>"
    );
    body.push_str("<h2>Your sessions</h2><table id=\"sessions\"><tr><th>Signed in</th><th>From</th><th>Methods</th></tr>");
    for s in sessions {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&s.auth_time.to_rfc3339()),
            escape(s.client_address.as_deref().unwrap_or("")),
            escape(&s.authentication_methods.join(", "))
        );
    }
    let _ = write!(
        body,
        "</table><form method=\"post\" action=\"/security-info/sign-out-everywhere\">{csrf}<button type=\"submit\" class=\"secondary\" id=\"sign-out-everywhere\">Sign out everywhere</button></form>\
<form method=\"post\" action=\"/signout\">{csrf}<button type=\"submit\" class=\"secondary\" id=\"sign-out\">Sign out</button></form>"
    );
    layout("Security info - Tessera", &session.csrf, &body)
}

pub fn totp_enrolment(
    session: &SessionInfo,
    enrolment: &TotpEnrolment,
    error: Option<&str>,
) -> String {
    let csrf = hidden_csrf(&session.csrf);
    let image = base64::engine::general_purpose::STANDARD.encode(enrolment.qr_svg.as_bytes());
    let body = format!(
        "<h1>Add an authenticator app</h1>{}\
<p>Scan this code with your authenticator app, then enter the code it shows.</p>\
<img alt=\"QR code to scan with an authenticator app\" width=\"200\" height=\"200\" src=\"data:image/svg+xml;base64,{image}\">\
<p>Or enter this key by hand: <code id=\"totp-secret\">{}</code></p>\
<form method=\"post\" action=\"/security-info/totp/confirm\">{csrf}\
<label for=\"name\">Name</label><input type=\"text\" id=\"name\" name=\"name\" value=\"Authenticator app\">\
<label for=\"code\">Code</label><input type=\"text\" id=\"code\" name=\"code\" inputmode=\"numeric\" autocomplete=\"one-time-code\" required>\
<button type=\"submit\" id=\"confirm-totp\">Add</button></form>",
        error_box(error),
        escape(&enrolment.secret)
    );
    layout("Add an authenticator app - Tessera", &session.csrf, &body)
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_markup() {
        assert_eq!(
            super::escape("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
    }
}
