//! The sign-in pages as a browser without JavaScript uses them: cookies kept
//! between requests, forms posted with their CSRF token.

#![allow(dead_code)]

use std::collections::BTreeMap;

/// A browser's cookies, by name.
#[derive(Default, Clone)]
pub struct Jar(BTreeMap<String, String>);

impl Jar {
    pub fn take(&mut self, response: &reqwest::Response) {
        for value in response.headers().get_all(reqwest::header::SET_COOKIE) {
            let text = value.to_str().unwrap();
            let pair = text.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() || text.contains("Max-Age=0") {
                self.0.remove(name);
            } else {
                self.0.insert(name.to_string(), value.to_string());
            }
        }
    }

    pub fn header(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

pub fn csrf_of(html: &str) -> String {
    let start = html.find("<meta name=\"csrf\" content=\"").unwrap() + 27;
    let end = html[start..].find('"').unwrap();
    html[start..start + end].to_string()
}

pub async fn form(
    http: &reqwest::Client,
    jar: &mut Jar,
    url: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    let response = http
        .post(url)
        .header("cookie", jar.header())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    jar.take(&response);
    response
}

/// Signs in with a password through the pages: the answer to the password
/// (303 when it signed the user in), and the browser's cookies.
pub async fn password_sign_in(base: &str, upn: &str, password: &str) -> (reqwest::StatusCode, Jar) {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut jar = Jar::default();
    let page = http.get(format!("{base}/signin")).send().await.unwrap();
    jar.take(&page);
    let csrf = csrf_of(&page.text().await.unwrap());
    let named = form(
        &http,
        &mut jar,
        &format!("{base}/signin/name"),
        &[("csrf", &csrf), ("username", upn)],
    )
    .await;
    assert_eq!(named.status(), 200);
    let answered = form(
        &http,
        &mut jar,
        &format!("{base}/signin/password"),
        &[("csrf", &csrf), ("secret", password)],
    )
    .await;
    (answered.status(), jar)
}
