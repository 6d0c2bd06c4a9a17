//! One instance's page: its form generated from the plugin's schema, per-field Save,
//! Enable/Disable, Test (saved or unsaved values), recent changes and delete; each action
//! answers a whole page, or JSON / an HTML fragment to the console's script.

use super::*;
use crate::instances::ConfigError;
use crate::schema::FieldError;
use crate::server::actions;
use crate::server::auth::Principal;
use crate::server::error::{ApiError, ErrorCode, FieldProblem};
use crate::server::form::{self, FieldContext, FieldState, Kind};
use crate::server::html::{attr, esc, page_in, Section, Viewer};
use crate::server::i18n::{Lang, Ui};
use crate::server::l10n;
use crate::server::AppState;
use crate::store::InstanceRecord;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Extension, Form, Json};
use passerelle_plugin_api::TestReport;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::fmt::Write as _;

/// What an instance page shows besides the saved configuration.
#[derive(Debug, Default)]
pub(super) struct Extras {
    /// Per field: error message and typed text.
    errors: HashMap<String, (String, Option<String>)>,
    /// Problems of the whole configuration (enable refused).
    problems: Vec<FieldProblem>,
    /// A message at the top.
    banner: Option<String>,
    /// A test just run, and whether it used unsaved values.
    report: Option<(TestReport, bool)>,
    saved: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct SavedQuery {
    saved: Option<String>,
}

pub(super) async fn instance_page(
    State(app): State<AppState>,
    Extension(who): Extension<Principal>,
    Extension(ui): Extension<Ui>,
    Path(id): Path<String>,
    Query(q): Query<SavedQuery>,
) -> Response {
    let extras = Extras {
        saved: q.saved,
        ..Extras::default()
    };
    match load(&app, &id) {
        Ok(record) => render_instance(&app, &ui, &who, StatusCode::OK, &record, &extras),
        Err(e) => error_page(&ui, &who, &e),
    }
}

pub(super) fn load(app: &AppState, id: &str) -> Result<InstanceRecord, ApiError> {
    let id = actions::instance_id(id)?;
    Ok(app.engine.store.get(&id).map_err(ConfigError::from)?)
}

/// The error with its message in the page's language (see [`error_text`]).
pub(super) fn localized(ui: &Ui, mut e: ApiError) -> ApiError {
    e.body.message = error_text(ui, &e);
    e
}

/// A refused field value with its message in the page's language: the validator's
/// verdicts through [`form::explain`], anything else through [`error_text`].
pub(super) fn localized_field(
    ui: &Ui,
    spec: &form::FormField,
    value: Option<&Value>,
    mut e: ApiError,
) -> ApiError {
    if e.code() == ErrorCode::InvalidValue && e.body.field.as_deref().is_none_or(|f| f == spec.name)
    {
        e.body.message = form::explain(ui, spec, value, &e.body.message);
        e
    } else {
        localized(ui, e)
    }
}

pub(super) fn render_report(
    ui: &Ui,
    out: &mut String,
    report: &TestReport,
    at_ms: Option<u64>,
    unsaved: bool,
) {
    let _ = write!(
        out,
        "<div class=\"report report-{}\"><p class=\"report-summary\">{} <strong>{}</strong>",
        report.status,
        status_badge(ui, report.status),
        esc(&report.summary)
    );
    if let Some(at) = at_ms {
        let _ = write!(
            out,
            " <span class=\"when\">{}</span>",
            l10n::time_html(i64::try_from(at).unwrap_or(0), ui.lang)
        );
    }
    if unsaved {
        let _ = write!(
            out,
            " <span class=\"note\">{}</span>",
            esc(&ui.t("test-unsaved-note"))
        );
    }
    let _ = write!(
        out,
        "</p><table class=\"steps\"><caption>{}</caption><thead><tr>",
        esc(&ui.t("test-steps"))
    );
    header_cells(
        out,
        ui,
        &["col-step", "col-status", "col-time", "col-detail"],
    );
    out.push_str("</tr></thead><tbody>");
    for step in &report.steps {
        let _ = write!(
            out,
            "<tr class=\"step step-{}\"><th scope=\"row\">{}</th><td>{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            step.status,
            esc(&step.name),
            status_badge(ui, step.status),
            esc(&l10n::milliseconds(step.duration_ms, ui.lang)),
            esc(&step.detail)
        );
    }
    out.push_str("</tbody></table></div>");
}

pub(super) fn render_instance(
    app: &AppState,
    ui: &Ui,
    who: &Principal,
    status: StatusCode,
    record: &InstanceRecord,
    extras: &Extras,
) -> Response {
    let (user, csrf) = viewer(who);
    let Some(plugin) = app.engine.registry.get(&record.plugin) else {
        return error_page(
            ui,
            who,
            &localized(
                ui,
                ApiError::from(ConfigError::UnknownPlugin {
                    plugin: record.plugin.clone(),
                    loaded: "see the Plugins page".to_owned(),
                }),
            ),
        );
    };
    let Some(model) = app.form_model_in(&record.plugin, ui.lang.code()) else {
        return error_page(
            ui,
            who,
            &ApiError::internal("no form model for a loaded plugin"),
        );
    };
    let effective = plugin.schema.with_defaults(&record.values);
    let id = record.id.as_str();
    let mut body = String::new();
    let _ = write!(
        body,
        "<p class=\"crumbs\">{}</p><h1>{} <span class=\"sub\">{}</span></h1>",
        ui.html("instance-crumbs-html", &[("id", id.into())]),
        esc(id),
        ui.html(
            "instance-subtitle-html",
            &[
                ("name", plugin.manifest.name.as_str().into()),
                ("plugin", plugin.id().into()),
            ]
        )
    );
    if let Some(b) = &extras.banner {
        let _ = write!(body, "<p class=\"problem\" role=\"alert\">{}</p>", esc(b));
    }
    if !extras.problems.is_empty() {
        let _ = write!(
            body,
            "<div class=\"problems\" role=\"alert\"><h2>{}</h2><ul>",
            esc(&ui.t("instance-fix-first"))
        );
        for p in &extras.problems {
            let title = model
                .field(&p.field)
                .map(|f| f.title.clone())
                .unwrap_or_else(|| p.field.clone());
            if p.field.is_empty() {
                let _ = write!(body, "<li>{}</li>", esc(&p.message));
            } else {
                let _ = write!(
                    body,
                    "<li><a href=\"#in-{}\">{}</a>{} {}</li>",
                    attr(&p.field),
                    esc(&title),
                    esc(&ui.t("colon")),
                    esc(&p.message)
                );
            }
        }
        body.push_str("</ul></div>");
    }
    // State and actions.
    let _ = write!(
        body,
        "<section class=\"bar\" aria-label=\"{}\"><p class=\"status\">{} <span class=\"rev\">{}</span></p>",
        attr(&ui.t("instance-state")),
        enabled_badge(ui, record.enabled),
        ui.html(
            "instance-revision-html",
            &[("revision", l10n::integer(record.revision, ui.lang).into())]
        )
    );
    let (toggle, label) = if record.enabled {
        ("disable", ui.t("instance-disable"))
    } else {
        ("enable", ui.t("instance-enable"))
    };
    let _ = write!(
        body,
        "<form method=\"post\" action=\"/instances/{}/{toggle}\"><input type=\"hidden\" name=\"_csrf\" value=\"{}\">\
         <input type=\"hidden\" name=\"revision\" value=\"{}\"><button type=\"submit\"{}>{}</button></form>\
         <form method=\"post\" action=\"/instances/{}/test\" data-enhance=\"test\"><input type=\"hidden\" name=\"_csrf\" value=\"{}\">\
         <button type=\"submit\" id=\"test-button\">{}</button></form></section>",
        attr(id),
        attr(&csrf),
        record.revision,
        if record.enabled { " class=\"secondary\"" } else { "" },
        esc(&label),
        attr(id),
        attr(&csrf),
        esc(&ui.t("test-button"))
    );
    // Test result: the one just run, else the last recorded.
    let _ = write!(
        body,
        "<section id=\"test-result\" aria-live=\"polite\" aria-labelledby=\"test-heading\"><h2 id=\"test-heading\">{}</h2>",
        esc(&ui.t("test-heading"))
    );
    match &extras.report {
        Some((report, unsaved)) => render_report(ui, &mut body, report, None, *unsaved),
        None => match app
            .last_test(id)
            .map(|(at, report)| (at, report_for(app, &record.plugin, report, ui)))
        {
            Some((at, report)) => render_report(ui, &mut body, &report, Some(at), false),
            None => {
                let _ = write!(
                    body,
                    "<p class=\"desc\">{}</p>",
                    ui.html("test-never-html", &[])
                );
            }
        },
    }
    body.push_str("</section>");
    // The form.
    let mut states: HashMap<String, FieldState<'_>> = HashMap::new();
    for (name, (message, typed)) in &extras.errors {
        states.insert(
            name.clone(),
            FieldState {
                error: Some(message),
                typed: typed.as_deref(),
                saved: false,
            },
        );
    }
    if let Some(saved) = &extras.saved {
        states.entry(saved.clone()).or_default().saved = true;
    }
    let ctx = FieldContext {
        instance: id,
        record,
        effective: &effective,
        model: &model,
        csrf: &csrf,
        ui,
    };
    let _ = write!(
        body,
        "<section class=\"config\" aria-labelledby=\"config-heading\"><h2 id=\"config-heading\">{}</h2><p class=\"desc\">{}</p>",
        esc(&ui.t("config-heading")),
        ui.html("config-intro-html", &[])
    );
    form::render_form(&mut body, &ctx, &states);
    body.push_str("</section>");
    // Recent changes.
    let _ = write!(
        body,
        "<section class=\"history\" aria-labelledby=\"history-heading\"><h2 id=\"history-heading\">{}</h2>",
        esc(&ui.t("history-heading"))
    );
    match app.audit.list(Some(id), 10) {
        Ok(entries) if entries.is_empty() => {
            let _ = write!(body, "<p class=\"desc\">{}</p>", esc(&ui.t("history-none")));
        }
        Ok(entries) => render_audit_table(ui, &mut body, &entries, false),
        Err(e) => {
            let e = ApiError::internal(e);
            let _ = write!(
                body,
                "<p class=\"problem\">{}</p>",
                esc(&error_text(ui, &e))
            );
        }
    }
    let _ = write!(
        body,
        "<p><a href=\"/audit?instance={}\">{}</a></p></section>",
        attr(id),
        esc(&ui.ta("history-full", &[("id", id.into())]))
    );
    let _ = write!(
        body,
        "<section class=\"danger\" aria-labelledby=\"delete-heading\"><h2 id=\"delete-heading\">{}</h2>\
         <form method=\"post\" action=\"/instances/{}/delete\" data-confirm=\"{}\">\
         <input type=\"hidden\" name=\"_csrf\" value=\"{}\"><input type=\"hidden\" name=\"revision\" value=\"{}\">\
         <button type=\"submit\" class=\"danger\">{}</button></form></section>",
        esc(&ui.t("delete-heading")),
        attr(id),
        attr(&ui.ta("delete-confirm", &[("id", id.into())])),
        attr(&csrf),
        record.revision,
        esc(&ui.t("delete-button"))
    );
    html_response(
        status,
        page_in(
            ui,
            id,
            Some(Viewer {
                user: &user,
                csrf: &csrf,
            }),
            Section::Instances,
            &body,
        ),
    )
}

/// Shows a refused change on the instance page: next to the field when it names one. The
/// error's message is already in the page's language, except the problems of a whole
/// configuration, which are explained here field by field.
pub(super) fn render_refusal(
    app: &AppState,
    ui: &Ui,
    who: &Principal,
    id: &str,
    e: &ApiError,
    field: Option<(&str, Option<String>)>,
) -> Response {
    let record = match load(app, id) {
        Ok(r) => r,
        Err(other) => return error_page(ui, who, &localized(ui, other)),
    };
    let mut extras = Extras::default();
    if e.code() == ErrorCode::InvalidConfiguration {
        let model = app.form_model_in(&record.plugin, ui.lang.code());
        let effective = app
            .engine
            .registry
            .get(&record.plugin)
            .map(|p| p.schema.with_defaults(&record.values))
            .unwrap_or_default();
        extras.problems = e
            .body
            .errors
            .iter()
            .map(|p| {
                let mut p = p.clone();
                if let Some(spec) = model.as_ref().and_then(|m| m.field(&p.field)) {
                    p.message = form::explain(ui, spec, effective.get(&p.field), &p.message);
                } else if ui.lang != Lang::En {
                    p.message = ui.ta("field-error-other", &[("detail", p.message.into())]);
                }
                p
            })
            .collect();
        for p in &extras.problems {
            if !p.field.is_empty() {
                extras
                    .errors
                    .insert(p.field.clone(), (p.message.clone(), None));
            }
        }
        if let Some((name, typed)) = field {
            if let Some(entry) = extras.errors.get_mut(name) {
                entry.1 = typed;
            } else {
                extras
                    .errors
                    .insert(name.to_owned(), (error_text(ui, e), typed));
            }
        }
    } else if let Some((name, typed)) = field {
        extras
            .errors
            .insert(name.to_owned(), (e.body.message.clone(), typed));
    } else {
        extras.banner = Some(e.body.message.clone());
    }
    render_instance(app, ui, who, e.status, &record, &extras)
}

pub(super) async fn field_submit(
    State(app): State<AppState>,
    Extension(who): Extension<Principal>,
    Extension(ui): Extension<Ui>,
    Path((id, field)): Path<(String, String)>,
    headers: HeaderMap,
    Form(pairs): Pairs,
) -> Response {
    let enhanced = is_enhanced(&headers);
    let record = match load(&app, &id) {
        Ok(r) => r,
        Err(e) if enhanced => return localized(&ui, e).into_response(),
        Err(e) => return error_page(&ui, &who, &localized(&ui, e)),
    };
    let Some(model) = app.form_model_in(&record.plugin, ui.lang.code()) else {
        return error_page(
            &ui,
            &who,
            &ApiError::internal("no form model for a loaded plugin"),
        );
    };
    let Some(spec) = model.field(&field) else {
        let e = ApiError::invalid_value(&FieldError::new(&field, ui.t("field-unknown")));
        return if enhanced {
            e.into_response()
        } else {
            error_page(&ui, &who, &e)
        };
    };
    let revision = last(&pairs, "revision").and_then(|r| r.parse().ok());
    let raw = last(&pairs, "value").unwrap_or_default();
    let clear = last(&pairs, "op") == Some("clear");
    let result = if clear {
        actions::clear_field(&app, who.actor(), &id, &field, revision)
            .await
            .map_err(|e| localized_field(&ui, spec, None, e))
    } else if spec.kind == Kind::Secret && raw.is_empty() {
        Err(ApiError::invalid_value(&FieldError::new(
            &field,
            ui.t("field-secret-empty"),
        )))
    } else {
        match form::check_input(spec, raw) {
            Ok(value) => {
                actions::set_field(&app, who.actor(), &id, &field, value.clone(), revision)
                    .await
                    .map_err(|e| localized_field(&ui, spec, Some(&value), e))
            }
            Err(problem) => Err(ApiError::invalid_value(&FieldError::new(
                &field,
                problem.message(&ui),
            ))),
        }
    };
    let typed = (spec.kind != Kind::Secret && !clear).then(|| raw.to_owned());
    match (result, enhanced) {
        (Ok(record), true) => Json(field_json(&ui, spec, &record)).into_response(),
        (Ok(record), false) => Redirect::to(&format!(
            "/instances/{}?saved={field}#field-{field}",
            record.id
        ))
        .into_response(),
        (Err(e), true) => e.into_response(),
        (Err(e), false) => render_refusal(&app, &ui, &who, &id, &e, Some((&field, typed))),
    }
}

/// What the script needs after a field was saved.
pub(super) fn field_json(ui: &Ui, spec: &form::FormField, record: &InstanceRecord) -> Value {
    let secret = spec.kind == Kind::Secret;
    let saved = record.values.get(&spec.name);
    let secret_set = record.secrets.contains_key(&spec.name);
    let set = saved.is_some() || secret_set;
    let state = form::field_state(spec, saved.is_some(), secret_set);
    let value = if secret {
        None
    } else {
        saved.or(spec.default.as_ref())
    };
    json!({
        "revision": record.revision,
        "enabled": record.enabled,
        "field": spec.name,
        "state": state,
        "state_text": form::state_text(ui, state),
        "can_clear": set,
        "value": value,
        "text": value.map(|v| form::input_text(&spec.kind, v)),
    })
}

pub(super) async fn set_enabled_submit(
    app: AppState,
    ui: Ui,
    who: Principal,
    id: String,
    pairs: Vec<(String, String)>,
    enabled: bool,
) -> Response {
    let revision = last(&pairs, "revision").and_then(|r| r.parse().ok());
    match actions::set_enabled(&app, who.actor(), &id, enabled, revision).await {
        Ok(record) => Redirect::to(&format!("/instances/{}", record.id)).into_response(),
        Err(e) if e.code() == ErrorCode::InvalidConfiguration => {
            render_refusal(&app, &ui, &who, &id, &e, None)
        }
        Err(e) => render_refusal(&app, &ui, &who, &id, &localized(&ui, e), None),
    }
}

pub(super) async fn enable_submit(
    State(app): State<AppState>,
    Extension(who): Extension<Principal>,
    Extension(ui): Extension<Ui>,
    Path(id): Path<String>,
    Form(pairs): Pairs,
) -> Response {
    set_enabled_submit(app, ui, who, id, pairs, true).await
}

pub(super) async fn disable_submit(
    State(app): State<AppState>,
    Extension(who): Extension<Principal>,
    Extension(ui): Extension<Ui>,
    Path(id): Path<String>,
    Form(pairs): Pairs,
) -> Response {
    set_enabled_submit(app, ui, who, id, pairs, false).await
}

pub(super) async fn test_submit(
    State(app): State<AppState>,
    Extension(who): Extension<Principal>,
    Extension(ui): Extension<Ui>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Form(pairs): Pairs,
) -> Response {
    let enhanced = is_enhanced(&headers);
    let record = match load(&app, &id) {
        Ok(r) => r,
        Err(e) if enhanced => return localized(&ui, e).into_response(),
        Err(e) => return error_page(&ui, &who, &localized(&ui, e)),
    };
    let Some(model) = app.form_model_in(&record.plugin, ui.lang.code()) else {
        return error_page(
            &ui,
            &who,
            &ApiError::internal("no form model for a loaded plugin"),
        );
    };
    // Unsaved values, sent by the script as `v.<field>`.
    let mut overrides = Map::new();
    for (key, raw) in &pairs {
        let Some(name) = key.strip_prefix("v.") else {
            continue;
        };
        let Some(spec) = model.field(name) else {
            continue;
        };
        if spec.kind == Kind::Secret && raw.is_empty() {
            continue;
        }
        match form::check_input(spec, raw) {
            Ok(v) => {
                overrides.insert(name.to_owned(), v);
            }
            Err(problem) => {
                let e = ApiError::invalid_value(&FieldError::new(name, problem.message(&ui)));
                return if enhanced {
                    e.into_response()
                } else {
                    render_refusal(&app, &ui, &who, &id, &e, Some((name, Some(raw.clone()))))
                };
            }
        }
    }
    let unsaved = !overrides.is_empty();
    let tested = actions::test(&app, who.actor(), &id, &overrides)
        .await
        .map(|report| match load(&app, &id) {
            Ok(record) => report_for(&app, &record.plugin, report, &ui),
            Err(_) => report,
        });
    match tested {
        Ok(report) if enhanced => {
            let mut out = format!(
                "<h2 id=\"test-heading\">{}</h2>",
                esc(&ui.t("test-heading"))
            );
            let at =
                (!unsaved).then(|| u64::try_from(crate::services::state::now_ms()).unwrap_or(0));
            render_report(&ui, &mut out, &report, at, unsaved);
            Html(out).into_response()
        }
        Ok(report) => {
            let extras = Extras {
                report: Some((report, unsaved)),
                ..Extras::default()
            };
            match load(&app, &id) {
                Ok(record) => render_instance(&app, &ui, &who, StatusCode::OK, &record, &extras),
                Err(e) => error_page(&ui, &who, &localized(&ui, e)),
            }
        }
        Err(e) if enhanced => localized(&ui, e).into_response(),
        Err(e) if e.code() == ErrorCode::InvalidConfiguration => {
            let field = e.body.field.clone();
            render_refusal(
                &app,
                &ui,
                &who,
                &id,
                &e,
                field.as_deref().map(|f| (f, None)),
            )
        }
        Err(e) => {
            let field = e.body.field.clone();
            let e = localized(&ui, e);
            render_refusal(
                &app,
                &ui,
                &who,
                &id,
                &e,
                field.as_deref().map(|f| (f, None)),
            )
        }
    }
}

pub(super) async fn delete_submit(
    State(app): State<AppState>,
    Extension(who): Extension<Principal>,
    Extension(ui): Extension<Ui>,
    Path(id): Path<String>,
    Form(pairs): Pairs,
) -> Response {
    let revision = last(&pairs, "revision").and_then(|r| r.parse().ok());
    match actions::delete_instance(&app, who.actor(), &id, revision).await {
        Ok(()) => Redirect::to("/instances").into_response(),
        Err(e) => render_refusal(&app, &ui, &who, &id, &localized(&ui, e), None),
    }
}
