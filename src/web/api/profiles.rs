//! Routes of profiles: the list, one profile, validating a text, the editor's form, its device
//! boxes' preview and saving it.

use super::*;

pub(in crate::web) fn routes(state: &AppState) -> Vec<BoxedFilter<(Response,)>> {
    let s = || with_state(state.clone());
    vec![
        // GET /api/v1/profiles
        at("profiles").and(warp::get()).and(s()).map(list).boxed(),
        // POST /api/v1/profiles/validate  {text, file_name?}
        api()
            .and(warp::path!("profiles" / "validate"))
            .and(warp::post())
            .and(json_body())
            .map(validate)
            .boxed(),
        // GET /api/v1/profiles/{name}
        api()
            .and(warp::path!("profiles" / String))
            .and(warp::get())
            .and(s())
            .map(one)
            .map(answer)
            .boxed(),
        // GET /api/v1/profiles/{name}/form: the editor's fields (secrets redacted).
        api()
            .and(warp::path!("profiles" / String / "form"))
            .and(warp::get())
            .and(s())
            .then(form)
            .map(answer)
            .boxed(),
        // POST /api/v1/profiles/{name}/preview {root_names?, feature_names?, values?, strings?}:
        // what each element of the boxes, as typed, gives over the profile's last response.
        api()
            .and(warp::path!("profiles" / String / "preview"))
            .and(warp::post())
            .and(json_body())
            .and(s())
            .then(preview)
            .map(answer)
            .boxed(),
        // PUT /api/v1/profiles/{name}: save from the editor (a different form name renames).
        api()
            .and(warp::path!("profiles" / String))
            .and(warp::put())
            .and(json_body())
            .and(s())
            .then(save)
            .map(answer)
            .boxed(),
    ]
}

fn list(state: AppState) -> Response {
    let set = state.engine.profiles();
    let profiles = set
        .profiles
        .values()
        .map(|p| {
            let mut summary = ProfileSummary::of(p.as_ref(), &state.listen_base);
            summary.last_run = state
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
        .collect();
    ok(&ProfileList {
        profiles,
        diagnostics: set.diagnostics.clone(),
    })
}

fn validate(request: ValidateRequest) -> Response {
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
}

/// A profile that is not loaded is a 404 with the problems its file has, if it has a file.
fn one(name: String, state: AppState) -> Answer {
    let name = decode(&name);
    let set = state.engine.profiles();
    let Some(profile) = set.get(&name) else {
        let mut error = ApiError::unknown_profile(&name);
        error.diagnostics = set.diagnostics_for(&name).into_iter().cloned().collect();
        return Err(error);
    };
    Ok(ok(&ProfileDetail::of(profile.as_ref(), &state.listen_base)))
}

/// The editor's view of a profile: its fields, its redirect URI and its authorization status.
async fn form(name: String, state: AppState) -> Answer {
    blocking(move || {
        let name = decode(&name);
        let profiles = state.engine.profiles();
        let profile = profiles
            .get(&name)
            .ok_or_else(|| ApiError::unknown_profile(&name))?;
        let redirect_uri = state.engine.redirect_uri(profile);
        let status = redirect_uri
            .as_ref()
            .and_then(|_| state.engine.authorization_status(&name).ok());
        Ok(ok(&ProfileFormView {
            form: ProfileForm::of(profile),
            redirect_uri,
            status,
        }))
    })
    .await?
}

async fn save(name: String, form: ProfileForm, state: AppState) -> Answer {
    let name = decode(&name);
    let engine = state.engine.clone();
    let saved_name = form.name.trim().to_string();
    let outcome = blocking(move || engine.save_profile(&name, &form))
        .await?
        .map_err(|error| ApiError::from_edit(error, "profile"))?;
    Ok(ok(&SavedView {
        saved: &saved_name,
        outcome,
    }))
}

/// The editor's device boxes, as typed (each absent one is not previewed).
#[derive(serde::Deserialize)]
struct PreviewRequest {
    root_names: Option<String>,
    feature_names: Option<String>,
    values: Option<String>,
    strings: Option<String>,
}

async fn preview(name: String, request: PreviewRequest, state: AppState) -> Answer {
    let name = decode(&name);
    let boxes: Vec<(&'static str, String)> = [
        ("root_names", request.root_names),
        ("feature_names", request.feature_names),
        ("values", request.values),
        ("strings", request.strings),
    ]
    .into_iter()
    .filter_map(|(key, source)| Some((key, source?)))
    .collect();
    let engine = state.engine.clone();
    let sources: Vec<String> = boxes.iter().map(|(_, source)| source.clone()).collect();
    let previews = blocking(move || {
        let sources: Vec<&str> = sources.iter().map(String::as_str).collect();
        engine.preview_boxes(&name, &sources)
    })
    .await??;
    let ran = previews.is_some();
    let previews = previews.unwrap_or_default();
    Ok(ok(&BoxesPreview {
        ran,
        boxes: boxes
            .iter()
            .zip(&previews)
            .map(|((key, _), elements)| (*key, elements.iter().map(ElementView::from).collect()))
            .collect(),
    }))
}
