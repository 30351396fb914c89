//! What every request handler shares: the store, the key hasher and the settings they need.

use crate::domain::key::KeyHasher;
use crate::store::Store;

pub struct AppState {
    pub store: Store,
    pub keys: KeyHasher,
    pub public_url: String,
}
