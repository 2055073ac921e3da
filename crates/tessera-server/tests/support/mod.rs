//! The real router on a fresh, bootstrapped store (no sockets), shared by the API
//! and edge tests.

#![allow(dead_code)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use serde_json::Value;
use tessera_core::{SystemClock, TenantId};
use tessera_server::{AppState, router};
use tessera_testkit::{Backend, bootstrap_admin};
use tower::ServiceExt;

pub struct App {
    pub app: axum::Router,
    pub directory: Arc<tessera_service::App>,
    pub tenant: TenantId,
    /// The bootstrap administrator's token.
    pub token: String,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
    /// The body as JSON, or as a JSON string when it is not JSON.
    pub body: Value,
}

impl Reply {
    /// The body as JSON, or null when it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }
}

/// The router over a directory on a fresh store of `backend`, bootstrapped.
pub async fn app(backend: Backend) -> App {
    let directory = Arc::new(tessera_service::App::new(
        backend.store().await,
        Arc::new(SystemClock),
    ));
    let admin = bootstrap_admin(&directory).await;
    let app = router(AppState {
        app: directory.clone(),
        metrics: None,
        certificate_proxy: None,
        trusted_proxies: Default::default(),
    });
    App {
        app,
        directory,
        tenant: admin.tenant(),
        token: admin.token,
    }
}

impl App {
    pub async fn send(&self, request: Request<Body>) -> Reply {
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), 10 << 20)
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::String(text.clone()));
        Reply {
            status,
            headers,
            text,
            body,
        }
    }

    /// A request with an optional bearer token, JSON body and extra headers.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = match body {
            Some(body) => request
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_string()))
                .unwrap(),
            None => request.body(Body::empty()).unwrap(),
        };
        self.send(request).await
    }

    /// GET as the administrator.
    pub async fn get(&self, path: &str) -> Reply {
        self.request(Method::GET, path, Some(&self.token), None, &[])
            .await
    }

    /// POST a JSON body as the administrator.
    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.request(Method::POST, path, Some(&self.token), Some(body), &[])
            .await
    }

    /// POST a form, unauthenticated.
    pub async fn post_form(&self, path: &str, form: &str) -> Reply {
        self.send(
            Request::post(path)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(form.to_string()))
                .unwrap(),
        )
        .await
    }
}
