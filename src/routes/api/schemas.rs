//! The OpenAPI schemas of values the domain defines and the API shows as they are (a key's
//! status, the verify codes, an environment, rate limits and credits), written here so that the
//! domain needs no utoipa. An enum's values are its `ALL` list under the names serde gives them
//! on the wire; an object's fields are listed beside a pattern naming all of the type's fields,
//! which stops compiling when the type gains one. The tests hold each schema against what serde
//! writes and reads.

use std::borrow::Cow;

use serde::Serialize;
use serde_json::json;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{
    AdditionalProperties, AnyOfBuilder, KnownFormat, ObjectBuilder, OneOfBuilder, Ref, Schema,
    SchemaFormat, Type,
};
use utoipa::{PartialSchema, ToSchema};

use crate::domain::commands::Environment;
use crate::domain::error_code::ErrorCode;
use crate::domain::inputs::{Credits, RateLimit, Refill, RefillInterval};
use crate::domain::key_status::KeyStatus;
use crate::domain::verify_code::VerifyCode;
use crate::domain::webhook::EventType;

/// `ToSchema` for a domain type: its schema, its name, and the named schemas it refers to.
macro_rules! domain_schema {
    ($type:ty, $name:literal, $schema:expr $(, refers_to: $($referred:ty),+)?) => {
        impl PartialSchema for $type {
            fn schema() -> RefOr<Schema> {
                $schema
            }
        }

        impl ToSchema for $type {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed($name)
            }

            #[allow(unused_variables)]
            fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
                $($(
                    schemas.push((<$referred>::name().into_owned(), <$referred>::schema()));
                    <$referred>::schemas(schemas);
                )+)?
            }
        }
    };
}

domain_schema!(
    VerifyCode,
    "VerifyCode",
    string_enum(
        Some("The outcome codes, stable for clients."),
        &VerifyCode::ALL
    )
);

domain_schema!(
    ErrorCode,
    "ErrorCode",
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(
            "The stable error codes, each documented at `{public_url}/docs/errors#{code}`."
        ))
        .enum_values(Some(ErrorCode::ALL.iter().map(|code| code.as_str())))
        .into()
);

domain_schema!(
    EventType,
    "WebhookEventType",
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some("An event a webhook endpoint can subscribe to."))
        .enum_values(Some(EventType::ALL.iter().map(|event| event.as_str())))
        .into()
);

domain_schema!(
    KeyStatus,
    "KeyStatus",
    string_enum(
        Some(
            "A key's state, in the order verification checks it: revoked, then disabled, then \
             expired."
        ),
        &KeyStatus::ALL,
    )
);

domain_schema!(
    Environment,
    "Environment",
    string_enum(None, &Environment::ALL)
);

domain_schema!(
    RefillInterval,
    "RefillInterval",
    string_enum(None, &RefillInterval::ALL)
);

domain_schema!(RateLimit, "RateLimit", {
    // Every field: one more stops this compiling until it is described below.
    let RateLimit {
        limit: _,
        window_seconds: _,
    };
    closed_object(Some("At most `limit` verifications per `window_seconds`."))
        .property(
            "limit",
            integer(KnownFormat::Int32)
                .description(Some("Verifications allowed per window (1 to 1,000,000)."))
                .example_value(json!(100))
                .minimum(Some(1))
                .maximum(Some(1_000_000)),
        )
        .required("limit")
        .property(
            "window_seconds",
            integer(KnownFormat::Int32)
                .description(Some("Window length in seconds (1 to 86,400)."))
                .example_value(json!(60))
                .minimum(Some(1))
                .maximum(Some(86_400)),
        )
        .required("window_seconds")
        .into()
});

domain_schema!(Refill, "Refill", {
    // Every field: one more stops this compiling until it is described below.
    let Refill {
        amount: _,
        interval: _,
    };
    closed_object(None)
        .property(
            "amount",
            integer(KnownFormat::Int64)
                .description(Some(
                    "The balance is reset to this amount at the start of each interval.",
                ))
                .example_value(json!(1000)),
        )
        .required("amount")
        .property("interval", reference::<RefillInterval>())
        .required("interval")
        .into()
}, refers_to: RefillInterval);

domain_schema!(Credits, "Credits", {
    // Every field: one more stops this compiling until it is described below.
    let Credits {
        remaining: _,
        refill: _,
    };
    closed_object(Some(
        "A usage budget: each verification costs `cost` credits; at zero the key answers \
         `USAGE_EXCEEDED`.",
    ))
    .property(
        "remaining",
        integer(KnownFormat::Int64).example_value(json!(1000)),
    )
    .required("remaining")
    .property(
        "refill",
        OneOfBuilder::new()
            .item(ObjectBuilder::new().schema_type(Type::Null))
            .item(reference::<Refill>()),
    )
    .into()
}, refers_to: Refill);

/// An IP address as the API reads it (`std::net::IpAddr`'s text): IPv4 or IPv6.
pub struct IpAddress;

impl PartialSchema for IpAddress {
    fn schema() -> RefOr<Schema> {
        let format = |format| {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(format)))
        };
        // anyOf: both alternatives are strings (Redocly: oneOf must be mutually exclusive).
        AnyOfBuilder::new()
            .description(Some("An IPv4 or IPv6 address."))
            .item(format(KnownFormat::Ipv4))
            .item(format(KnownFormat::Ipv6))
            .into()
    }
}

impl ToSchema for IpAddress {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("IpAddress")
    }
}

/// A string that is one of `all`, by the names serde writes them under.
fn string_enum<T: Serialize>(description: Option<&str>, all: &[T]) -> RefOr<Schema> {
    let names = all
        .iter()
        .map(|value| serde_json::to_value(value).expect("a unit variant serializes as its name"));
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(description)
        .enum_values(Some(names))
        .into()
}

/// An object that takes no other fields (`#[serde(deny_unknown_fields)]`).
fn closed_object(description: Option<&str>) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(description)
        .additional_properties(Some(AdditionalProperties::<Schema>::FreeForm(false)))
}

/// Writes `example`, as the derived schemas of the rest of the document do (OpenAPI 3.1 prefers
/// `examples`).
trait ExampleValue {
    fn example_value(self, example: serde_json::Value) -> Self;
}

impl ExampleValue for ObjectBuilder {
    #[allow(deprecated)]
    fn example_value(self, example: serde_json::Value) -> Self {
        self.example(Some(example))
    }
}

fn integer(format: KnownFormat) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(format)))
}

fn reference<T: ToSchema>() -> Ref {
    Ref::from_schema_name(T::name())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde::de::DeserializeOwned;
    use serde_json::Value;

    use super::*;

    fn schema_of<T: ToSchema>() -> Value {
        serde_json::to_value(T::schema()).unwrap()
    }

    /// The enum's schema lists exactly the names serde writes, in `ALL`'s order, and each name
    /// reads back as its value.
    fn assert_enum<T: ToSchema + Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(
        all: &[T],
    ) {
        let schema = schema_of::<T>();
        let listed: Vec<Value> = schema["enum"].as_array().unwrap().clone();
        let written: Vec<Value> = all
            .iter()
            .map(|v| serde_json::to_value(v).unwrap())
            .collect();
        assert_eq!(listed, written, "{}", T::name());
        for (name, value) in listed.into_iter().zip(all) {
            assert_eq!(&serde_json::from_value::<T>(name).unwrap(), value);
        }
    }

    /// The object's properties are exactly the fields serde writes for `full` (every optional
    /// field set), its required ones those it writes for `bare` (none set), and serde refuses
    /// any other field, as `additionalProperties: false` says.
    fn assert_object<T: ToSchema + Serialize + DeserializeOwned>(full: &T, bare: &T) {
        let schema = schema_of::<T>();
        let keys = |value: &T| -> BTreeSet<String> {
            let written = serde_json::to_value(value).unwrap();
            written.as_object().unwrap().keys().cloned().collect()
        };
        let properties: BTreeSet<String> = schema["properties"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert_eq!(properties, keys(full), "{}", T::name());
        let required: BTreeSet<String> = schema["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap().to_owned())
            .collect();
        assert_eq!(required, keys(bare), "{}", T::name());
        assert_eq!(schema["additionalProperties"], false);
        let mut extra = serde_json::to_value(full).unwrap();
        extra["unknown"] = json!(1);
        assert!(serde_json::from_value::<T>(extra).is_err(), "{}", T::name());
    }

    #[test]
    fn enums_list_every_value_under_its_wire_name() {
        assert_enum(&VerifyCode::ALL);
        assert_enum(&KeyStatus::ALL);
        assert_enum(&Environment::ALL);
        assert_enum(&RefillInterval::ALL);
    }

    #[test]
    fn objects_describe_exactly_the_fields_serde_writes() {
        let limit = RateLimit {
            limit: 100,
            window_seconds: 60,
        };
        assert_object(&limit, &limit);
        let refill = Refill {
            amount: 1000,
            interval: RefillInterval::Monthly,
        };
        assert_object(&refill, &refill);
        let full = Credits {
            remaining: 1000,
            refill: Some(refill),
        };
        let bare = Credits {
            remaining: 1000,
            refill: None,
        };
        assert_object(&full, &bare);
    }
}
