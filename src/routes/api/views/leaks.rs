//! The answer to a leak report, in GitHub's secret-scanning feedback format.

use secrecy::ExposeSecret;
use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::manage::leaks::{LeakVerdict, LeakedToken};

/// GitHub's feedback for one reported token: the raw token when it was ours, only its SHA-256
/// otherwise (so the answer never echoes a stranger's secret).
#[derive(Debug, Serialize, PartialEq, Eq, ToSchema)]
#[serde(untagged)]
pub enum LeakFeedback {
    TruePositive {
        token_raw: String,
        token_type: String,
        label: &'static str,
    },
    FalsePositive {
        token_hash: String,
        token_type: String,
        label: &'static str,
    },
}

impl From<LeakVerdict> for LeakFeedback {
    fn from(verdict: LeakVerdict) -> Self {
        let LeakVerdict {
            report:
                LeakedToken {
                    token,
                    token_type,
                    url: _,
                    source: _,
                },
            ours,
        } = verdict;
        if ours {
            Self::TruePositive {
                token_raw: token.expose_secret().to_owned(),
                token_type,
                label: "true_positive",
            }
        } else {
            Self::FalsePositive {
                token_hash: hex::encode(Sha256::digest(token.expose_secret().as_bytes())),
                token_type,
                label: "false_positive",
            }
        }
    }
}
