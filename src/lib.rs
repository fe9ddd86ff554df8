//! Bellhop: a home-automation hub plugin with an HTTP action engine, an expression language
//! that maps API responses onto devices, an embedded device hub and OAuth2.
//!
//! Module map (dependencies point down this list, never up): `expr` (expression core) and
//! `devices` (device model and store) know no other module; `profile` loads and compiles profile
//! files using `expr`; `event` loads automation events (checking the profiles they name);
//! `engine` runs actions and ties profiles, expressions and devices together;
//! `web` and the CLI call the engine. See ARCHITECTURE.md.

pub mod clock;
pub mod devices;
pub mod engine;
pub mod event;
pub mod expr;
pub mod mqtt;
pub mod net;
pub mod oauth;
pub mod profile;
pub mod secret;
pub mod settings;
pub mod sync;
pub mod tokens;
pub mod web;
