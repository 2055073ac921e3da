//! Redirect URI matching at the authorization endpoint: exact string comparison
//! (RFC 9700 §2.1), except that a native application's loopback redirect may use
//! any port (RFC 8252 §7.3). Nothing is sent to a URI that does not match one the
//! application registered.

use tessera_directory::model::ApplicationSpec;

/// A loopback `http` URI's host and everything after the port (path and query),
/// parsed as a URL: no user information, no fragment, the host exactly
/// `127.0.0.1`, `[::1]` or `localhost` (so `http://localhost:1@evil.com/` is not).
fn loopback_http(uri: &str) -> Option<(String, String)> {
    let url = url::Url::parse(uri).ok()?;
    if url.scheme() != "http"
        || !url.username().is_empty()
        || url.password().is_some()
        || url.fragment().is_some()
    {
        return None;
    }
    let host = match url.host()? {
        url::Host::Domain("localhost") => "localhost".to_string(),
        url::Host::Ipv4(ip) if ip.octets() == [127, 0, 0, 1] => ip.to_string(),
        url::Host::Ipv6(ip) if ip.is_loopback() => "[::1]".to_string(),
        _ => return None,
    };
    let rest = match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_string(),
    };
    Some((host, rest))
}

/// Whether `given` matches the `registered` redirect URI: the same string, or,
/// for a native application (`native`), the same loopback URI on another port.
pub fn redirect_matches(registered: &str, given: &str, native: bool) -> bool {
    if registered == given {
        return true;
    }
    native
        && matches!(
            (loopback_http(registered), loopback_http(given)),
            (Some(a), Some(b)) if a == b
        )
}

/// Whether `redirect_uri` is registered for the application; `Some(true)` for a
/// confidential (web) client's URI, `Some(false)` for a public client's (a
/// single-page or native application).
pub fn registered_kind(spec: &ApplicationSpec, redirect_uri: &str) -> Option<bool> {
    if spec
        .web
        .redirect_uris
        .iter()
        .any(|r| redirect_matches(r, redirect_uri, false))
    {
        return Some(true);
    }
    let public = spec
        .spa
        .redirect_uris
        .iter()
        .any(|r| redirect_matches(r, redirect_uri, false))
        || spec
            .public_client
            .redirect_uris
            .iter()
            .any(|r| redirect_matches(r, redirect_uri, true));
    public.then_some(false)
}

/// Whether a redirect URI is a native application's (RFC 8252): a loopback `http`
/// URI or a private-use scheme. Anything else (an `https` URI, or what does not
/// parse) is a browser's.
pub fn is_native(redirect_uri: &str) -> bool {
    match url::Url::parse(redirect_uri) {
        Ok(url) => match url.scheme() {
            "https" => false,
            "http" => matches!(
                url.host_str(),
                Some("127.0.0.1") | Some("localhost") | Some("[::1]")
            ),
            _ => true,
        },
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_redirects_may_change_port_for_native_apps_only() {
        assert!(redirect_matches(
            "http://127.0.0.1/cb",
            "http://127.0.0.1:50123/cb",
            true
        ));
        assert!(!redirect_matches(
            "http://127.0.0.1/cb",
            "http://127.0.0.1:50123/cb",
            false
        ));
        assert!(!redirect_matches(
            "http://127.0.0.1/cb",
            "http://127.0.0.1:50123/other",
            true
        ));
        assert!(!redirect_matches(
            "https://app.contoso.com/cb",
            "https://app.contoso.com/cb/",
            true
        ));
        assert!(!redirect_matches(
            "http://127.0.0.1/cb",
            "http://127.0.0.1.evil.com/cb",
            true
        ));
        assert!(redirect_matches(
            "http://[::1]/cb",
            "http://[::1]:8000/cb",
            true
        ));
        // User information sends the browser elsewhere: never a loopback match.
        assert!(!redirect_matches(
            "http://localhost/cb",
            "http://localhost:1@evil.com/cb",
            true
        ));
        assert!(!redirect_matches(
            "http://127.0.0.1/cb",
            "http://127.0.0.1:1@evil.com/cb",
            true
        ));
        assert!(!redirect_matches(
            "http://127.0.0.1/cb",
            "http://127.0.0.1:80#@evil.com/cb",
            true
        ));
    }

    #[test]
    fn registered_uris_say_whether_the_client_is_confidential() {
        let spec: ApplicationSpec = serde_json::from_value(serde_json::json!({
            "displayName": "Contoso",
            "web": { "redirectUris": ["https://app.contoso.com/cb"] },
            "spa": { "redirectUris": ["https://spa.contoso.com/cb"] },
            "publicClient": { "redirectUris": ["http://127.0.0.1/cb"] },
        }))
        .unwrap();
        assert_eq!(
            registered_kind(&spec, "https://app.contoso.com/cb"),
            Some(true)
        );
        assert_eq!(
            registered_kind(&spec, "https://spa.contoso.com/cb"),
            Some(false)
        );
        assert_eq!(
            registered_kind(&spec, "http://127.0.0.1:4711/cb"),
            Some(false)
        );
        assert_eq!(registered_kind(&spec, "https://app.contoso.com/cb2"), None);
    }

    #[test]
    fn native_redirects_are_loopback_or_private_schemes() {
        assert!(!is_native("https://app.contoso.com/cb"));
        assert!(is_native("http://127.0.0.1:5000/cb"));
        assert!(is_native("com.contoso.app:/oauth2redirect"));
        assert!(!is_native("not a url"));
    }
}
