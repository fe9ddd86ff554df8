//! The REST API and the pages, by resource: each file's `routes` names its paths and methods;
//! `web::routes` composes them behind the edge.

use super::*;

pub(super) mod authorization;
pub(super) mod devices;
pub(super) mod events;
pub(super) mod pages;
pub(super) mod profiles;
pub(super) mod runs;
pub(super) mod stream;
pub(super) mod system;
