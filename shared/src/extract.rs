//! Request extractors shared by every HTTP function: JSON bodies that fail as problem+json
//! naming the field, the authenticated caller, client information, pagination and If-Match.

use std::{net::IpAddr, sync::Arc};

use axum::{
    extract::{ConnectInfo, FromRef, FromRequest, FromRequestParts, Request},
    http::{HeaderMap, header, request::Parts},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use bytes::Bytes;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use utoipa::IntoParams;
use uuid::Uuid;

use crate::{
    db::JsonText,
    error::{ApiError, FieldError},
    jwt::{Claims, JwtVerifier},
};

/// A JSON body. Malformed JSON is 400; a missing field, a wrong type or an unknown field is
/// 422 naming the field; a body over the route's limit is 413; another media type is 415.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|mime| {
                let mime = mime.trim().to_ascii_lowercase();
                mime == "application/json"
                    || (mime.starts_with("application/") && mime.ends_with("+json"))
            })
            .unwrap_or(false);
        if !is_json {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::BadRequest("The request body could not be read.".into())
            }
        })?;
        parse_json(&bytes).map(Json)
    }
}

/// The buffer a JSON answer is written into. axum's own `Json` starts at 128 bytes and grows
/// by doubling, which took about seven reallocations for a 13 KiB page of articles. From 4 KiB
/// a small resource is written without growing, a 6 KiB article after one growth and such a
/// page after two. (Problems keep `axum::Json`: they are small, and a failure here answers one.)
const RESPONSE_BUFFER: usize = 4096;

impl<T: Serialize> axum::response::IntoResponse for Json<T> {
    fn into_response(self) -> axum::response::Response {
        let mut body = Vec::with_capacity(RESPONSE_BUFFER);
        json_response(serde_json::to_writer(&mut body, &self.0).map(|()| body))
    }
}

impl<T: Serialize> Json<T> {
    /// The answer `T` (an object) with one more member, `name`, whose value is `text` as
    /// PostgreSQL wrote it: appended after `T`'s own members without being parsed or checked.
    pub fn with_member<'a>(self, name: &'static str, text: JsonText<'a>) -> JsonWith<'a, T> {
        JsonWith {
            value: self.0,
            name,
            text,
        }
    }
}

/// [`Json::with_member`]'s answer.
#[derive(Debug)]
pub struct JsonWith<'a, T> {
    value: T,
    name: &'static str,
    text: JsonText<'a>,
}

impl<T: Serialize> axum::response::IntoResponse for JsonWith<'_, T> {
    fn into_response(self) -> axum::response::Response {
        let mut body = Vec::with_capacity(RESPONSE_BUFFER + self.text.0.len());
        let written = serde_json::to_writer(&mut body, &self.value).and_then(|()| {
            // `{…}` becomes `{…,"name":text}`.
            if body.pop() != Some(b'}') {
                return Err(serde::ser::Error::custom("the answer is not a JSON object"));
            }
            if body.len() > 1 {
                body.push(b',');
            }
            serde_json::to_writer(&mut body, self.name)?;
            body.push(b':');
            body.extend_from_slice(self.text.0);
            body.push(b'}');
            Ok(body)
        });
        json_response(written)
    }
}

/// A JSON answer written by hand, for a read whose answer serde would spend most of the
/// request's own time on: keys and punctuation are written as literal text, a string is
/// copied whole unless it holds a character JSON escapes, and an id is written without an
/// escape check. What it writes is byte for byte what `serde_json` writes for the same value;
/// a caller keeps a test that compares the two.
///
/// ```
/// # use lectern_shared::extract::JsonWriter;
/// let mut out = JsonWriter::new();
/// out.raw("{\"name\":").str("Ada \"the\" first").raw("}");
/// assert_eq!(out.as_bytes(), br#"{"name":"Ada \"the\" first"}"#);
/// ```
#[derive(Debug)]
pub struct JsonWriter(Vec<u8>);

impl JsonWriter {
    pub fn new() -> Self {
        Self(Vec::with_capacity(RESPONSE_BUFFER))
    }

    /// JSON text as it is: punctuation and keys (`{"id":`), never a value from outside.
    pub fn raw(&mut self, text: &str) -> &mut Self {
        self.0.extend_from_slice(text.as_bytes());
        self
    }

    /// `value` as a JSON string.
    pub fn str(&mut self, value: &str) -> &mut Self {
        // Without an early exit, so the check runs over whole words at a time.
        let escapes = value.bytes().fold(false, |any, b| {
            any | (b < 0x20) | (b == b'"') | (b == b'\\')
        });
        if escapes {
            // serde_json's own escaping, so both paths write the same text.
            serde_json::to_writer(&mut self.0, value).expect("writing into a Vec cannot fail");
        } else {
            self.0.reserve(value.len() + 2);
            self.0.push(b'"');
            self.0.extend_from_slice(value.as_bytes());
            self.0.push(b'"');
        }
        self
    }

    /// `id` as a JSON string, hyphenated and lower-case as `uuid`'s serde writes it.
    pub fn uuid(&mut self, id: Uuid) -> &mut Self {
        let mut text = [b'"'; 38];
        id.hyphenated().encode_lower(&mut text[1..37]);
        self.0.extend_from_slice(&text);
        self
    }

    /// `items` as a JSON array, each written by `item`.
    pub fn array<I: IntoIterator>(
        &mut self,
        items: I,
        mut item: impl FnMut(&mut Self, I::Item),
    ) -> &mut Self {
        self.0.push(b'[');
        for (i, each) in items.into_iter().enumerate() {
            if i > 0 {
                self.0.push(b',');
            }
            item(self, each);
        }
        self.0.push(b']');
        self
    }

    pub fn bool(&mut self, value: bool) -> &mut Self {
        self.raw(if value { "true" } else { "false" })
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl Default for JsonWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl axum::response::IntoResponse for JsonWriter {
    fn into_response(self) -> axum::response::Response {
        json_response(Ok(self.0))
    }
}

/// A written JSON answer as `200 application/json`. A value that could not be written (a map
/// with non-string keys, say) is our bug: logged with its cause and answered as a bare 500.
fn json_response(written: serde_json::Result<Vec<u8>>) -> axum::response::Response {
    use axum::response::IntoResponse;
    match written {
        Ok(body) => (
            [(
                header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response(),
        Err(err) => {
            ApiError::Internal(anyhow::Error::new(err).context("serializing a JSON answer"))
                .into_response()
        }
    }
}

/// Parses a JSON document into `T`, mapping serde's complaints onto fields.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::BadRequest(format!("The body is not valid JSON: {e}.")))?;
    if !value.is_object() {
        return Err(ApiError::validation("", "the body must be a JSON object"));
    }
    serde_path_to_error::deserialize(value).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner().to_string();
        let (field, message) = describe_serde_error(&path, &inner);
        ApiError::Validation(vec![FieldError::new(field, message)])
    })
}

fn backticked(message: &str) -> Option<&str> {
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(&message[start..start + len])
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() || path == "." {
        field.to_string()
    } else {
        format!("{path}.{field}")
    }
}

fn describe_serde_error(path: &str, message: &str) -> (String, String) {
    let path = if path == "." { "" } else { path };
    if message.starts_with("missing field") {
        let field = backticked(message).unwrap_or_default();
        return (join(path, field), "is required".into());
    }
    if message.starts_with("unknown field") {
        // The path already ends at the unknown field.
        let field = backticked(message).unwrap_or_default();
        let field = if path.ends_with(field) {
            path.to_string()
        } else {
            join(path, field)
        };
        return (field, "is not a field this endpoint accepts".into());
    }
    // "invalid type: integer `3`, expected a string at line 1 column 9" -> drop the position.
    let message = message
        .split(" at line ")
        .next()
        .unwrap_or(message)
        .to_string();
    (path.to_string(), message)
}

/// A path parameter that answers 422 naming the parameter when it does not parse (a
/// malformed id, say), instead of axum's plain-text 400.
#[derive(Debug, Clone, Copy)]
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        use axum::extract::{path::ErrorKind, rejection::PathRejection};
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Self(value)),
            Err(PathRejection::FailedToDeserializePathParams(err)) => match err.kind() {
                ErrorKind::ParseErrorAtKey { key, .. }
                | ErrorKind::InvalidUtf8InPathParam { key } => Err(ApiError::validation(
                    key.clone(),
                    "is not a valid value for this path parameter",
                )),
                _ => {
                    // A single value (`Path<Uuid>`) fails without a key: name the route's first
                    // parameter instead.
                    let key = axum::extract::RawPathParams::from_request_parts(parts, state)
                        .await
                        .ok()
                        .and_then(|params| params.iter().next().map(|(k, _)| k.to_string()))
                        .unwrap_or_else(|| "path".into());
                    Err(ApiError::validation(
                        key,
                        "is not a valid value for this path parameter",
                    ))
                }
            },
            Err(other) => Err(ApiError::internal(anyhow::anyhow!(
                "path extraction failed: {other}"
            ))),
        }
    }
}

/// The caller, authenticated by a bearer access token.
#[derive(Debug, Clone)]
pub struct AuthUser {
    /// Shared with the verifier's cache of checked tokens.
    pub claims: Arc<Claims>,
}

impl AuthUser {
    pub fn id(&self) -> Uuid {
        self.claims.sub
    }
    pub fn session_id(&self) -> Uuid {
        self.claims.sid
    }

    /// 403 unless the caller holds `module.action`: the one way a handler says what it needs,
    /// e.g. `caller.require(Module::Articles, Action::Publish)?`.
    pub fn require(
        &self,
        module: crate::authz::Module,
        action: crate::authz::Action,
    ) -> Result<(), ApiError> {
        self.claims.perms.require(module, action)
    }

    pub fn can(&self, module: crate::authz::Module, action: crate::authz::Action) -> bool {
        self.claims.perms.allows(module, action)
    }
}

pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
        .filter(|t| !t.is_empty())
}

impl<S> FromRequestParts<S> for AuthUser
where
    S: Send + Sync,
    Arc<JwtVerifier>: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let token = bearer_token(&parts.headers)
            .ok_or_else(|| ApiError::Unauthorized("A bearer access token is required.".into()))?;
        let verifier = Arc::<JwtVerifier>::from_ref(state);
        let claims = verifier.verify(token).map_err(|err| {
            tracing::info!(reason = %err, "rejected an access token");
            ApiError::Unauthorized("The access token is invalid or expired.".into())
        })?;
        Ok(Self { claims })
    }
}

/// The caller if a valid token came, `None` if none came; a bad token is still a 401.
#[derive(Debug, Clone)]
pub struct MaybeAuthUser(pub Option<AuthUser>);

impl<S> FromRequestParts<S> for MaybeAuthUser
where
    S: Send + Sync,
    Arc<JwtVerifier>: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if parts.headers.contains_key(header::AUTHORIZATION) {
            AuthUser::from_request_parts(parts, state)
                .await
                .map(|u| Self(Some(u)))
        } else {
            Ok(Self(None))
        }
    }
}

/// Where a request came from: the source IP API Gateway saw (or the socket peer locally) and
/// the user agent.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for ClientInfo {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        use lambda_http::request::RequestContext;
        let ip = match parts.extensions.get::<RequestContext>() {
            Some(RequestContext::ApiGatewayV2(ctx)) => {
                ctx.http.source_ip.as_deref().and_then(|ip| ip.parse().ok())
            }
            _ => parts
                .extensions
                .get::<ConnectInfo<std::net::SocketAddr>>()
                .map(|ConnectInfo(addr)| addr.ip()),
        };
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(512).collect());
        Ok(Self { ip, user_agent })
    }
}

/// `?limit=&cursor=` on every list. The cursor is opaque to clients: base64url JSON of the
/// last row's sort key.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// 1 to 100; 20 when absent.
    pub limit: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Page<C> {
    pub limit: i64,
    pub after: Option<C>,
}

impl PageQuery {
    pub fn parse<C: DeserializeOwned>(&self) -> Result<Page<C>, ApiError> {
        let limit = match self.limit.as_deref() {
            None => 20,
            Some(raw) => match raw.parse::<i64>() {
                Ok(n) if (1..=100).contains(&n) => n,
                _ => {
                    return Err(ApiError::validation(
                        "limit",
                        "must be a whole number from 1 to 100",
                    ));
                }
            },
        };
        let after = match self.cursor.as_deref() {
            None | Some("") => None,
            Some(raw) => Some(
                URL_SAFE_NO_PAD
                    .decode(raw)
                    .ok()
                    .and_then(|bytes| serde_json::from_slice(&bytes).ok())
                    .ok_or_else(|| {
                        ApiError::validation("cursor", "is not a cursor this list issued")
                    })?,
            ),
        };
        Ok(Page { limit, after })
    }
}

impl<T> List<T> {
    /// Builds a page from up to `limit + 1` rows: the extra row only says that more follow,
    /// and the cursor is the sort key of the last row kept.
    pub fn paginate<C: Serialize>(mut data: Vec<T>, limit: i64, cursor: impl Fn(&T) -> C) -> Self {
        let next_cursor = if data.len() as i64 > limit {
            data.truncate(limit as usize);
            data.last().map(|last| encode_cursor(&cursor(last)))
        } else {
            None
        };
        Self { data, next_cursor }
    }
}

/// Query-string parameters; a malformed query answers a problem naming the parameter.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let raw = parts.uri.query().unwrap_or_default();
        serde_urlencoded::from_str(raw).map(Query).map_err(|err| {
            let message = err.to_string();
            match backticked(&message) {
                Some(field) => {
                    ApiError::validation(field, "is not a valid value for this parameter")
                }
                None => ApiError::BadRequest(format!("The query string is malformed: {message}")),
            }
        })
    }
}

/// A field a client may set, leave out or clear: absent → `None`, `null` →
/// `Some(None)`, a value → `Some(Some(value))`. Use with `#[serde(default, deserialize_with =
/// "lectern_shared::extract::nullable")]`.
pub fn nullable<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

pub fn encode_cursor<C: Serialize>(cursor: &C) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(cursor).expect("cursor serialises"))
}

/// A list answer: `{"data": [...], "next_cursor": ...}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct List<T> {
    pub data: Vec<T>,
    pub next_cursor: Option<String>,
}

/// The `If-Match` version a client sent, if any (`"3"` or `W/"3"`).
#[derive(Debug, Clone, Copy)]
pub struct IfMatch(pub Option<i32>);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(header::IF_MATCH) else {
            return Ok(Self(None));
        };
        let raw = value.to_str().unwrap_or_default().trim();
        let raw = raw.strip_prefix("W/").unwrap_or(raw).trim_matches('"');
        raw.parse().map(|v| Self(Some(v))).map_err(|_| {
            ApiError::BadRequest("If-Match must be an ETag this API sent, like \"3\".".into())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        email: String,
        age: u8,
    }

    async fn written(response: axum::response::Response) -> (u16, String) {
        let status = response.status().as_u16();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[test]
    fn the_writer_writes_what_serde_json_writes() {
        let texts = [
            "",
            "Ada",
            "Bench Squad 4.1.2",
            "quote \" backslash \\ slash /",
            "tab\tnew line\ncarriage\rbell\u{7}nul\u{0}delete\u{7f}",
            "Zoë, 東京, 🙂",
            "</script>&amp;",
        ];
        for text in texts {
            let mut out = JsonWriter::new();
            out.str(text);
            assert_eq!(
                out.as_bytes(),
                serde_json::to_vec(text).unwrap(),
                "{text:?}"
            );
        }
        let id = Uuid::parse_str("01A24D44-0E13-7369-8546-4D56D3153134").unwrap();
        let mut out = JsonWriter::new();
        out.raw("[")
            .uuid(id)
            .raw(",")
            .uuid(Uuid::nil())
            .raw(",")
            .bool(true)
            .raw(",")
            .bool(false)
            .raw("]");
        out.raw(",").array([1, 2, 3], |out, n| {
            out.bool(n == 2);
        });
        out.raw(",").array(std::iter::empty::<()>(), |_, ()| {});
        let mut expected = serde_json::to_vec(&(id, Uuid::nil(), true, false)).unwrap();
        expected.extend_from_slice(b",[false,true,false],[]");
        assert_eq!(out.as_bytes(), expected);
    }

    #[tokio::test]
    async fn a_member_passed_through_is_appended_to_the_object_as_it_is() {
        use axum::response::IntoResponse;
        #[derive(Serialize)]
        struct Head {
            title: &'static str,
        }
        #[derive(Serialize)]
        struct Nothing {}
        let text = JsonText(br#"[{"id":1,"content":"a \"quoted\" <b>"}]"#);
        let (status, body) = written(
            Json(Head { title: "Clocks" })
                .with_member("blocks", text)
                .into_response(),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(
            body,
            r#"{"title":"Clocks","blocks":[{"id":1,"content":"a \"quoted\" <b>"}]}"#
        );
        let parsed: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(parsed["blocks"][0]["content"], "a \"quoted\" <b>");
        let (_, body) = written(
            Json(Nothing {})
                .with_member("blocks", JsonText(b"[]"))
                .into_response(),
        )
        .await;
        assert_eq!(body, r#"{"blocks":[]}"#);
        // Only an object can take a member: anything else is a bare 500.
        let (status, body) =
            written(Json(vec![1]).with_member("blocks", text).into_response()).await;
        assert_eq!(status, 500);
        assert!(!body.contains("object"), "{body}");
    }

    fn field_of(result: Result<Body, ApiError>) -> String {
        match result.unwrap_err() {
            ApiError::Validation(errors) => errors[0].field.clone(),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn json_answers_carry_their_media_type_and_the_whole_value() {
        use axum::response::IntoResponse;
        let big: Vec<String> = (0..500).map(|i| format!("item \"{i}\"")).collect();
        let response = Json(&big).into_response();
        assert_eq!(response.status(), http::StatusCode::OK);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        assert!(
            body.len() > RESPONSE_BUFFER,
            "the test must outgrow the buffer"
        );
        let back: Vec<String> = serde_json::from_slice(&body).unwrap();
        assert_eq!(back, big);
    }

    #[tokio::test]
    async fn a_value_json_cannot_hold_is_a_bare_500() {
        use axum::response::IntoResponse;
        // JSON object keys must be strings; a map keyed by tuples cannot be written.
        let unwritable: std::collections::BTreeMap<(u8, u8), u8> = [((1, 2), 3)].into();
        let response = Json(unwritable).into_response();
        assert_eq!(response.status(), http::StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let text = String::from_utf8(body.to_vec()).unwrap();
        assert!(!text.contains("key must be"), "no serde internals: {text}");
    }

    #[test]
    fn json_errors_name_the_field() {
        assert_eq!(field_of(parse_json(br#"{"age": 3}"#)), "email");
        assert_eq!(field_of(parse_json(br#"{"email": 3, "age": 3}"#)), "email");
        assert_eq!(
            field_of(parse_json(br#"{"email": "a", "age": 3, "role": "admin"}"#)),
            "role"
        );
        assert!(matches!(
            parse_json::<Body>(b"{not json"),
            Err(ApiError::BadRequest(_))
        ));
    }
}
