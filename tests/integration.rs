//! The single integration-test binary: one module per theme.

mod support;

mod api;
mod architecture;
mod cli;
mod docs;
mod engine;
mod events;
mod fuzz;
mod grants;
mod hardening;
mod home_assistant;
mod listening;
mod mqtt;
mod oauth;
mod peers;
mod profiles;
mod providers;
