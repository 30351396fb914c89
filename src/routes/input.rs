//! Reading what clients send (JSON bodies, query strings, raw bodies) so that every failure is a
//! problem+json answer (the OAuth error JSON on `/oauth/*`) that names the field and what was
//! expected, and never repeats the submitted text: a user who pastes a key into the wrong place
//! must not find it echoed in the answer or in the log.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::{JsonPayloadError, PayloadError};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{Error, FromRequest, HttpMessage, HttpRequest, ResponseError, web};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;

use crate::domain::error_code::ErrorCode;
use crate::error::ApiError;
use crate::routes::oauth::OAuthError;

/// How `web::Json` bodies are read, for any handler that takes one rather than [`Json`]: at most
/// `limit` bytes, and every failure a problem+json answer.
pub fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(limit)
        .error_handler(|err, _req| json_error(&err).into())
}

fn json_error(err: &JsonPayloadError) -> ApiError {
    use JsonPayloadError as E;
    match err {
        E::OverflowKnownLength { .. } | E::Overflow { .. } | E::Payload(PayloadError::Overflow) => {
            too_large()
        }
        E::ContentType => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::UnsupportedMediaType,
            "send the body as application/json",
        ),
        E::Deserialize(e) if e.is_data() => invalid_body(None, describe(&e.to_string())),
        // Syntax errors are serde_json's fixed phrases with a position, never the input.
        E::Deserialize(e) => ApiError::bad_request(ErrorCode::InvalidJson, e.to_string()),
        _ => unreadable(),
    }
}

fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::PayloadTooLarge,
        "the request body is too large",
    )
}

fn unreadable() -> ApiError {
    ApiError::bad_request(ErrorCode::InvalidBody, "the request body could not be read")
}

/// A JSON body read into `T`, like `web::Json` (at most `LATCHKEY_MAX_BODY_BYTES`, sent as
/// `application/json`), whose failures are problem+json answers that name the field at fault.
pub struct Json<T>(pub T);

impl<T> Json<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for Json<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        if !is_json(req) {
            return Box::pin(std::future::ready(Err(json_error(
                &JsonPayloadError::ContentType,
            ))));
        }
        // The limit is the app's `PayloadConfig` (`LATCHKEY_MAX_BODY_BYTES`).
        let body = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            let body = body
                .await
                .map_err(|err| match err.as_error::<PayloadError>() {
                    Some(PayloadError::Overflow) => too_large(),
                    _ => unreadable(),
                })?;
            // Every body of this API is an object: serde would also fill a struct from an
            // array of its fields in order (`[null, null]`), which no client means.
            if !body.trim_ascii_start().starts_with(b"{")
                && serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_ok()
            {
                return Err(invalid_body(
                    None,
                    "the body must be a JSON object".to_owned(),
                ));
            }
            serde_json::from_slice::<T>(&body)
                .map(Json)
                .map_err(|err| match err.is_data() {
                    true => data_error::<T>(&body, &err),
                    false => json_error(&JsonPayloadError::Deserialize(err)),
                })
        })
    }
}

/// `application/json`, or another JSON type (`application/…+json`), as `web::Json` accepts.
fn is_json(req: &HttpRequest) -> bool {
    req.mime_type().ok().flatten().is_some_and(|mime| {
        mime.type_() == actix_web::mime::APPLICATION
            && (mime.subtype() == actix_web::mime::JSON
                || mime.suffix() == Some(actix_web::mime::JSON))
    })
}

/// A body of the wrong shape. serde reports the value it choked on but not its field, so the
/// field is found by reading each top-level member alone: the first that fails by itself (other
/// than by lacking the rest) is at fault. That costs one more pass over the body, on this path
/// only. An unknown member is not named: its name is whatever the client wrote.
fn data_error<T: DeserializeOwned>(body: &[u8], err: &serde_json::Error) -> ApiError {
    let members = match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(members)) => members,
        _ => serde_json::Map::new(),
    };
    for (name, value) in members {
        let alone = serde_json::Value::Object(serde_json::Map::from_iter([(name.clone(), value)]));
        let Err(err) = serde_json::from_value::<T>(alone) else {
            continue;
        };
        let message = err.to_string();
        if message.starts_with("missing field") {
            continue;
        }
        // An unknown field, unless it is inside a known one (`ratelimit: {<unknown>: 1}`).
        if message.starts_with("unknown field") && is_unknown::<T>(&name) {
            break;
        }
        return invalid_body(Some(&name), describe(&message));
    }
    let message = err.to_string();
    let missing = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next());
    invalid_body(missing, describe(&message))
}

/// Whether `T` has no member called `name`.
fn is_unknown<T: DeserializeOwned>(name: &str) -> bool {
    let alone = serde_json::Map::from_iter([(name.to_owned(), serde_json::Value::Null)]);
    serde_json::from_value::<T>(serde_json::Value::Object(alone))
        .is_err_and(|err| err.to_string().starts_with("unknown field"))
}

fn invalid_body(field: Option<&str>, message: String) -> ApiError {
    let Some(field) = field else {
        return ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::InvalidBody,
            message,
        );
    };
    let mut err = ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::InvalidBody,
        format!("{field}: {message}"),
    );
    err.fields.push((field.to_owned(), message));
    err
}

/// A query string read into `T`, like `web::Query`, whose failures are 422 `validation_failed`
/// naming the parameter at fault (a bad value of `status` and a `limit` out of range are the same
/// kind of mistake).
pub struct Query<T>(pub T);

impl<T> Query<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for Query<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned> FromRequest for Query<T> {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(parse_query::<T>(req.query_string()).map(Query))
    }
}

/// The name a query failure is filed under when no parameter of ours can be named.
const WHOLE_QUERY: &str = "query";

fn parse_query<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    let err = match serde_urlencoded::from_str::<T>(query) {
        Ok(value) => return Ok(value),
        Err(err) => err,
    };
    // The parameter at fault is the first one that fails on its own. Every query type's fields
    // are optional, so a parameter alone fails only for itself; an unknown one is not named,
    // since its name is whatever the client wrote.
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap_or_default();
    for pair in &pairs {
        let Ok(alone) = serde_urlencoded::to_string([pair]) else {
            continue;
        };
        if let Err(err) = serde_urlencoded::from_str::<T>(&alone) {
            let message = err.to_string();
            let field = if message.starts_with("unknown field") {
                WHOLE_QUERY
            } else {
                &pair.0
            };
            return Err(ApiError::invalid_field(field, describe(&message)));
        }
    }
    Err(ApiError::invalid_field(
        WHOLE_QUERY,
        describe(&err.to_string()),
    ))
}

/// How `web::Query` (used by the dashboard) reports failures: as [`Query`] does, without naming
/// the parameter.
pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err, _req| {
        ApiError::invalid_field(WHOLE_QUERY, describe(&err.to_string())).into()
    })
}

/// Raw bodies (`web::Bytes`: the OAuth forms, leak reports) have no error handler of their own:
/// this turns their failures into the answer of the endpoint's kind, never actix's plain text.
pub async fn body_errors(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let oauth = req.path().starts_with("/oauth/");
    let response = next.call(req).await?;
    let overflow = match response
        .response()
        .error()
        .and_then(|e| e.as_error::<PayloadError>())
    {
        None => return Ok(response.map_into_left_body()),
        Some(err) => matches!(err, PayloadError::Overflow),
    };
    let answer = match (oauth, overflow) {
        (true, true) => OAuthError::body_too_large().error_response(),
        (true, false) => {
            OAuthError::invalid_request("the request body could not be read").error_response()
        }
        (false, true) => too_large().error_response(),
        (false, false) => unreadable().error_response(),
    };
    Ok(response.into_response(answer).map_into_right_body())
}

/// A deserializer's message with everything the client sent taken out. serde's messages put the
/// input between backticks or quotes (`invalid type: string "…"`, ``unknown field `…` ``); what
/// follows `expected` is the type's own description. Messages of an unknown form are replaced.
pub fn describe(message: &str) -> String {
    const EXPECTED: &str = ", expected ";
    let (core, position) = match message.rfind(" at line ") {
        Some(at) if is_position(&message[at..]) => message.split_at(at),
        _ => (message, ""),
    };
    let expected = core.rfind(EXPECTED).map(|at| &core[at + EXPECTED.len()..]);
    let described = if let Some(rest) = core
        .strip_prefix("invalid type: ")
        .or_else(|| core.strip_prefix("invalid value: "))
    {
        let kind = kind_of(rest);
        let what = if core.starts_with("invalid type") {
            "invalid type"
        } else {
            "invalid value"
        };
        match expected {
            Some(expected) => format!("{what}: {kind}, expected {expected}"),
            None => format!("{what}: {kind}"),
        }
    } else if core.starts_with("unknown variant ") {
        match expected {
            Some(expected) => format!("unknown value, expected {expected}"),
            None => "unknown value".to_owned(),
        }
    } else if core.starts_with("unknown field ") {
        if core.ends_with("there are no fields") {
            "unknown field: this takes no fields".to_owned()
        } else {
            match expected {
                Some(expected) => format!("unknown field, expected {expected}"),
                None => "unknown field".to_owned(),
            }
        }
    } else if core.starts_with("missing field `")
        || core.starts_with("duplicate field `")
        || core.starts_with("invalid length ")
        || KNOWN_MESSAGES.contains(&core)
    {
        // Field names of our own types, a count, or a library's fixed phrase.
        core.to_owned()
    } else {
        "the value does not have the expected form".to_owned()
    };
    format!("{described}{position}")
}

/// serde_json's ` at line L column C`.
fn is_position(text: &str) -> bool {
    let numbers = text
        .strip_prefix(" at line ")
        .and_then(|rest| rest.split_once(" column "));
    numbers.is_some_and(|(line, column)| {
        [line, column]
            .iter()
            .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    })
}

/// serde's description of an unexpected value, without the value (`string "…"` → `a string`).
fn kind_of(unexpected: &str) -> &'static str {
    for (start, kind) in [
        ("string ", "a string"),
        ("integer ", "an integer"),
        ("floating point ", "a number"),
        ("boolean ", "a boolean"),
        ("character ", "a character"),
        ("map", "an object"),
        ("sequence", "an array"),
        ("null", "null"),
        ("unit value", "null"),
    ] {
        if unexpected.starts_with(start) {
            return kind;
        }
    }
    "a value"
}

/// Fixed messages of the parsers behind query and JSON fields (integers, booleans, chrono).
const KNOWN_MESSAGES: &[&str] = &[
    "invalid digit found in string",
    "cannot parse integer from empty string",
    "number too large to fit in target type",
    "number too small to fit in target type",
    "invalid float literal",
    "provided string was not `true` or `false`",
    "input contains invalid characters",
    "premature end of input",
    "trailing input",
    "input is out of range",
    "no possible date and time matching input",
    "input is not enough for unique date and time",
];

#[cfg(test)]
mod tests {
    use super::describe;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)] // only deserialized
    struct Body {
        name: String,
        ttl: Option<i64>,
        limits: Option<Limits>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Limits {
        limit: i64,
    }

    /// The field a body's data error is filed under, if any.
    fn field_of(body: &str) -> Option<String> {
        let err = serde_json::from_str::<Body>(body).expect_err("the body is refused");
        let answer = super::data_error::<Body>(body.as_bytes(), &err);
        assert!(!answer.message.contains("acme_live"), "{}", answer.message);
        answer.fields.first().map(|(field, _)| field.clone())
    }

    #[test]
    fn data_errors_name_the_field_but_never_an_unknown_one() {
        let field = |f: &str| Some(f.to_owned());
        assert_eq!(
            field_of(r#"{"name": "n", "ttl": "acme_live_x"}"#),
            field("ttl")
        );
        assert_eq!(field_of(r#"{"ttl": "acme_live_x"}"#), field("ttl"));
        assert_eq!(
            field_of(r#"{"name": "n", "limits": {"acme_live_x": 1}}"#),
            field("limits")
        );
        assert_eq!(field_of(r#"{"acme_live_x": 1, "name": "n"}"#), None);
        assert_eq!(field_of(r#"{"ttl": 5}"#), field("name"));
        assert_eq!(field_of(r#"["acme_live_x"]"#), None);
    }

    #[test]
    fn describe_keeps_what_was_expected_and_drops_what_was_sent() {
        for (message, described) in [
            (
                "invalid type: string \"lk_live_secret\", expected u64 at line 1 column 9",
                "invalid type: a string, expected u64 at line 1 column 9",
            ),
            (
                "invalid value: integer `-5`, expected u64",
                "invalid value: an integer, expected u64",
            ),
            (
                "unknown variant `acme_live_x, expected `, expected `live` or `test`",
                "unknown value, expected `live` or `test`",
            ),
            (
                "unknown field `acme_live_x`, expected one of `a`, `b` at line 1 column 20",
                "unknown field, expected one of `a`, `b` at line 1 column 20",
            ),
            (
                "unknown field `x, expected y`, there are no fields",
                "unknown field: this takes no fields",
            ),
            ("missing field `name`", "missing field `name`"),
            (
                "invalid type: string \"k at line 1 column 2\", expected u64",
                "invalid type: a string, expected u64",
            ),
            (
                "invalid digit found in string",
                "invalid digit found in string",
            ),
            (
                "custom: acme_live_secret is odd",
                "the value does not have the expected form",
            ),
        ] {
            assert_eq!(describe(message), described, "{message}");
        }
    }
}
