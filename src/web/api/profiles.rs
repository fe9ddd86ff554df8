//! Routes of profiles: the list, one profile, validating a text, the editor's form and saving it.

use super::*;

pub(in crate::web) fn routes(state: &AppState) -> Vec<BoxedFilter<(Response,)>> {
    let api = warp::path("api").and(warp::path("v1"));
    let s = || with_state(state.clone());
    // GET /api/v1/profiles
    let profiles_list = api
        .and(warp::path("profiles"))
        .and(warp::path::end())
        .and(warp::get())
        .and(s())
        .map(|state: AppState| {
            let set = state.engine.profiles();
            ok(&ProfileList {
                profiles: set
                    .profiles
                    .values()
                    .map(|p| {
                        let mut summary = ProfileSummary::of(p.as_ref(), &state.listen_base);
                        summary.last_run =
                            state
                                .engine
                                .history(Some(&p.name), 1)
                                .first()
                                .map(|r| LastRun {
                                    ok: r.ok,
                                    skipped: r.skipped,
                                    started_at: r.started_at.clone(),
                                });
                        summary
                    })
                    .collect(),
                diagnostics: set.diagnostics.clone(),
            })
        });
    // POST /api/v1/profiles/validate
    let profiles_validate = api
        .and(warp::path!("profiles" / "validate"))
        .and(warp::post())
        .and(json_body())
        .map(|request: ValidateRequest| {
            let name = request.file_name.unwrap_or_else(|| "profile.toml".into());
            let (profile, diagnostics) = crate::profile::load_text(
                &PathBuf::from(name),
                &request.text,
                &SecretSource::default(),
            );
            ok(&ValidateResponse {
                valid: profile.is_some(),
                diagnostics,
            })
        });
    // GET /api/v1/profiles/{name}
    let profiles_get = api
        .and(warp::path!("profiles" / String))
        .and(warp::get())
        .and(s())
        .map(|name: String, state: AppState| {
            let name = decode(&name);
            let set = state.engine.profiles();
            match set.get(&name) {
                Some(profile) => ok(&ProfileDetail::of(profile.as_ref(), &state.listen_base)),
                None => {
                    let mut error = ApiError::unknown_profile(&name);
                    error.diagnostics = set.diagnostics_for(&name).into_iter().cloned().collect();
                    error.into_response()
                }
            }
        });
    // GET /api/v1/profiles/{name}/form: the editor's fields (secrets redacted).
    let profiles_form = api
        .and(warp::path!("profiles" / String / "form"))
        .and(warp::get())
        .and(s())
        .and_then(|name: String, state: AppState| async move {
            respond(blocking(move || profile_form(&state, &decode(&name))).await)
        });
    // PUT /api/v1/profiles/{name}: save from the editor (a different form name renames).
    let profiles_save = api
        .and(warp::path!("profiles" / String))
        .and(warp::put())
        .and(json_body())
        .and(s())
        .and_then(
            |name: String, form: ProfileForm, state: AppState| async move {
                let name = decode(&name);
                let engine = state.engine.clone();
                let saving = form.clone();
                let result = blocking(move || engine.save_profile(&name, &saving)).await;
                respond(match result {
                    Ok(Ok(saved)) => Ok(ok(
                        &serde_json::json!({ "saved": form.name.trim(), "outcome": saved }),
                    )),
                    Ok(Err(error)) => Err(ApiError::from_edit(error, "profile")),
                    Err(error) => Err(error),
                })
            },
        );
    vec![
        profiles_list.boxed(),
        profiles_validate.boxed(),
        profiles_get.boxed(),
        profiles_form.boxed(),
        profiles_save.boxed(),
    ]
}

/// The editor's view of a profile: its fields, its redirect URI and its authorization status.
fn profile_form(state: &AppState, name: &str) -> Response {
    let profiles = state.engine.profiles();
    let Some(profile) = profiles.get(name) else {
        return ApiError::unknown_profile(name).into_response();
    };
    let redirect_uri = state.engine.redirect_uri(profile);
    let status = redirect_uri
        .as_ref()
        .and_then(|_| state.engine.authorization_status(name).ok());
    ok(&serde_json::json!({
        "form": ProfileForm::of(profile),
        "redirect_uri": redirect_uri,
        "status": status,
    }))
}
