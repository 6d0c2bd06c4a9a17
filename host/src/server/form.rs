//! Forms generated from a plugin's JSON Schema, with no per-plugin code.
//!
//! [`FormModel`] reads what a form needs from the schema: titles and descriptions, the
//! widget of each field (text, secret, whole number with bounds, number, checkbox, labelled
//! choice from `oneOf` of `{const, title}`, list of strings, JSON for anything else),
//! defaults, groups (`x-group`) and order (`x-order`), and conditional fields: an `allOf`
//! `if`/`then` rule (or a `dependencies` entry whose `oneOf` branches are tagged by a `const`)
//! shows (and requires) the fields a branch names only when the tag has that branch's value.
//!
//! [`render_field`] writes one field as its own `<form>` (each field is saved on its own),
//! working without JavaScript: labels tied to inputs, descriptions and errors tied by
//! `aria-describedby`, a Save button per field, and secrets that are never written into the
//! page (only whether they are set). The console's script only enhances these forms.
//! [`parse_input`] turns what a browser sends back into a JSON value of the field's type.
//! Every text the form adds around the schema's own titles and descriptions (buttons,
//! states, hints, input errors) is in the page's language; titles, descriptions and choice
//! labels are shown as the schema gives them.

use super::html::{attr, esc};
use super::i18n::Ui;
use crate::schema::ConfigSchema;
use crate::store::InstanceRecord;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::fmt::Write as _;

/// The widget of a field.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Text { url: bool, multiline: bool },
    Secret,
    Integer { min: Option<i64>, max: Option<i64> },
    Number { min: Option<f64>, max: Option<f64> },
    Boolean,
    Choice(Vec<Choice>),
    StringList,
    Json,
}

impl Kind {
    fn name(&self) -> &'static str {
        match self {
            Kind::Text { .. } => "text",
            Kind::Secret => "secret",
            Kind::Integer { .. } => "integer",
            Kind::Number { .. } => "number",
            Kind::Boolean => "boolean",
            Kind::Choice(_) => "choice",
            Kind::StringList => "list",
            Kind::Json => "json",
        }
    }
}

/// One labelled choice.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    pub value: Value,
    pub title: String,
}

/// The form value of a choice: a string as itself, anything else as JSON.
pub fn choice_key(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// "Shown when `tag` is one of `values`".
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub tag: String,
    pub values: Vec<Value>,
}

impl Condition {
    fn holds(&self, config: &Map<String, Value>) -> bool {
        config
            .get(&self.tag)
            .is_some_and(|v| self.values.contains(v))
    }
}

/// A field of the form.
#[derive(Debug, Clone)]
pub struct FormField {
    pub name: String,
    pub title: String,
    pub description: Option<String>,
    pub kind: Kind,
    pub default: Option<Value>,
    pub group: Option<String>,
    /// Always required (the schema's top-level `required`).
    pub required: bool,
    /// Shown only when this holds.
    pub shown_when: Option<Condition>,
    /// Required when this holds.
    pub required_when: Option<Condition>,
}

/// The form of a schema: fields in display order.
#[derive(Debug, Clone)]
pub struct FormModel {
    pub fields: Vec<FormField>,
}

impl FormModel {
    pub fn new(schema: &ConfigSchema) -> Self {
        let root = schema.json();
        let required: Vec<&str> = root
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let (shown, needed) = conditions(root);
        let fields = schema
            .field_names()
            .iter()
            .filter_map(|name| {
                let prop = schema.field(name)?;
                let text = |k: &str| prop.get(k).and_then(Value::as_str).map(str::to_owned);
                Some(FormField {
                    title: text("title").unwrap_or_else(|| humanize(name)),
                    description: text("description"),
                    kind: kind_of(prop, schema.is_secret(name)),
                    default: prop.get("default").cloned(),
                    group: text("x-group"),
                    required: required.contains(&name.as_str()),
                    shown_when: shown.get(name.as_str()).cloned(),
                    required_when: needed.get(name.as_str()).cloned(),
                    name: name.clone(),
                })
            })
            .collect();
        FormModel { fields }
    }

    pub fn field(&self, name: &str) -> Option<&FormField> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// Fields by group, groups in the order of their first field.
    pub fn groups(&self) -> Vec<(Option<&str>, Vec<&FormField>)> {
        let mut groups: Vec<(Option<&str>, Vec<&FormField>)> = Vec::new();
        for f in &self.fields {
            let g = f.group.as_deref();
            match groups.iter_mut().find(|(k, _)| *k == g) {
                Some((_, list)) => list.push(f),
                None => groups.push((g, vec![f])),
            }
        }
        groups
    }

    /// The title of a choice of field `name`, or the value as text.
    pub fn value_title(&self, ui: &Ui, name: &str, value: &Value) -> String {
        match self.field(name).map(|f| &f.kind) {
            Some(Kind::Choice(choices)) => choices
                .iter()
                .find(|c| &c.value == value)
                .map(|c| c.title.clone())
                .unwrap_or_else(|| choice_key(value)),
            Some(Kind::Boolean) => {
                if value == &Value::Bool(true) {
                    ui.t("value-on")
                } else {
                    ui.t("value-off")
                }
            }
            _ => choice_key(value),
        }
    }
}

/// Conditional fields, from `allOf` of `if`/`then` or from `dependencies` (see
/// [`passerelle_plugin_api::config::conditionals`]): tag → values of the switch.
/// Returns (shown when, required when) by field name.
fn conditions(root: &Value) -> (HashMap<String, Condition>, HashMap<String, Condition>) {
    let mut shown: HashMap<String, Condition> = HashMap::new();
    let mut needed: HashMap<String, Condition> = HashMap::new();
    for rule in passerelle_plugin_api::config::conditionals(root) {
        let tag = &rule.tag;
        let value = &rule.value;
        let add = |map: &mut HashMap<String, Condition>, name: &str| {
            let c = map.entry(name.to_owned()).or_insert_with(|| Condition {
                tag: tag.clone(),
                values: Vec::new(),
            });
            if c.tag == *tag && !c.values.contains(value) {
                c.values.push(value.clone());
            }
        };
        for name in rule.shown.iter().filter(|n| *n != tag) {
            add(&mut shown, name);
        }
        for name in rule.required.iter().filter(|n| *n != tag) {
            add(&mut needed, name);
        }
    }
    (shown, needed)
}

fn kind_of(prop: &Value, secret: bool) -> Kind {
    if secret {
        return Kind::Secret;
    }
    let choices = prop
        .get("oneOf")
        .or_else(|| prop.get("anyOf"))
        .and_then(Value::as_array)
        .map(|alts| {
            alts.iter()
                .filter_map(|a| {
                    let value = a.get("const")?.clone();
                    let title = a
                        .get("title")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                        .unwrap_or_else(|| choice_key(&value));
                    Some(Choice { value, title })
                })
                .collect::<Vec<_>>()
        })
        .or_else(|| {
            prop.get("enum").and_then(Value::as_array).map(|values| {
                values
                    .iter()
                    .map(|v| Choice {
                        value: v.clone(),
                        title: choice_key(v),
                    })
                    .collect()
            })
        });
    if let Some(choices) = choices.filter(|c| !c.is_empty()) {
        return Kind::Choice(choices);
    }
    let ty = prop.get("type").and_then(Value::as_str);
    match ty {
        Some("boolean") => Kind::Boolean,
        Some("integer") => Kind::Integer {
            min: prop.get("minimum").and_then(Value::as_i64),
            max: prop.get("maximum").and_then(Value::as_i64),
        },
        Some("number") => Kind::Number {
            min: prop.get("minimum").and_then(Value::as_f64),
            max: prop.get("maximum").and_then(Value::as_f64),
        },
        Some("array")
            if prop
                .get("items")
                .and_then(|i| i.get("type"))
                .and_then(Value::as_str)
                == Some("string") =>
        {
            Kind::StringList
        }
        Some("string") => {
            let format = prop.get("format").and_then(Value::as_str);
            Kind::Text {
                url: matches!(format, Some("uri" | "url")),
                multiline: prop.get("maxLength").and_then(Value::as_u64).unwrap_or(0) > 200,
            }
        }
        _ => Kind::Json,
    }
}

/// `client_secret` → `Client secret`; `authentication` → `Authentication`.
pub fn humanize(key: &str) -> String {
    let spaced = key.replace(['_', '-'], " ");
    let mut chars = spaced.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Why what a browser sent does not fit a field's type.
#[derive(Debug, Clone, PartialEq)]
pub enum InputError {
    NotInteger(String),
    NotNumber(String),
    NotOnOff(String),
    NotAChoice(Vec<String>),
    NotJson(String),
}

impl InputError {
    /// The message in the page's language.
    pub fn message(&self, ui: &Ui) -> String {
        match self {
            InputError::NotInteger(raw) => {
                ui.ta("input-not-integer", &[("typed", format!("{raw:?}").into())])
            }
            InputError::NotNumber(raw) => {
                ui.ta("input-not-number", &[("typed", format!("{raw:?}").into())])
            }
            InputError::NotOnOff(raw) => {
                ui.ta("input-not-on-off", &[("typed", format!("{raw:?}").into())])
            }
            InputError::NotAChoice(titles) => ui.ta(
                "input-not-a-choice",
                &[("choices", titles.join(", ").into())],
            ),
            InputError::NotJson(detail) => {
                ui.ta("input-not-json", &[("detail", detail.clone().into())])
            }
        }
    }
}

/// Turns what a browser sent for a field into a JSON value of the field's type; the error
/// in English (see [`check_input`] for the page's language).
pub fn parse_input(field: &FormField, raw: &str) -> Result<Value, String> {
    check_input(field, raw).map_err(|e| e.message(&Ui::default()))
}

/// Turns what a browser sent for a field into a JSON value of the field's type.
pub fn check_input(field: &FormField, raw: &str) -> Result<Value, InputError> {
    match &field.kind {
        Kind::Text { .. } | Kind::Secret => Ok(Value::String(raw.to_owned())),
        Kind::Integer { .. } => raw
            .trim()
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| InputError::NotInteger(raw.trim().to_owned())),
        Kind::Number { .. } => raw
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| InputError::NotNumber(raw.trim().to_owned())),
        Kind::Boolean => match raw.trim() {
            "true" | "on" | "1" => Ok(Value::Bool(true)),
            "false" | "off" | "0" | "" => Ok(Value::Bool(false)),
            other => Err(InputError::NotOnOff(other.to_owned())),
        },
        Kind::Choice(choices) => choices
            .iter()
            .find(|c| choice_key(&c.value) == raw)
            .map(|c| c.value.clone())
            .ok_or_else(|| {
                InputError::NotAChoice(choices.iter().map(|c| c.title.clone()).collect())
            }),
        Kind::StringList => Ok(Value::Array(
            raw.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(|l| Value::String(l.to_owned()))
                .collect(),
        )),
        Kind::Json => serde_json::from_str(raw).map_err(|e| InputError::NotJson(e.to_string())),
    }
}

/// A refused value's message in the page's language. The validator's own message is
/// English; the refusals a form meets most (a bound crossed, a URL that is not one, a
/// required field left empty) are recognised from the field's schema and said in the page's
/// language; any other keeps the validator's words after a translated lead.
pub fn explain(ui: &Ui, field: &FormField, value: Option<&Value>, english: &str) -> String {
    let lang = ui.lang;
    let num = |x: f64| super::l10n::decimal(x, 6, lang);
    let bound = match (&field.kind, value.and_then(Value::as_f64)) {
        (Kind::Integer { min, max }, Some(v)) => {
            check_bounds(v, min.map(|b| b as f64), max.map(|b| b as f64))
        }
        (Kind::Number { min, max }, Some(v)) => check_bounds(v, *min, *max),
        _ => None,
    };
    match bound {
        Some(Bound::Below(min)) => {
            return ui.ta(
                "field-error-minimum",
                &[
                    (
                        "typed",
                        num(value.and_then(Value::as_f64).unwrap_or(min)).into(),
                    ),
                    ("minimum", num(min).into()),
                ],
            )
        }
        Some(Bound::Above(max)) => {
            return ui.ta(
                "field-error-maximum",
                &[
                    (
                        "typed",
                        num(value.and_then(Value::as_f64).unwrap_or(max)).into(),
                    ),
                    ("maximum", num(max).into()),
                ],
            )
        }
        None => {}
    }
    match (&field.kind, value) {
        (_, None) | (_, Some(Value::Null)) => return ui.t("field-error-required"),
        (Kind::Text { .. }, Some(Value::String(s))) if s.is_empty() => {
            return ui.t("field-error-required")
        }
        (Kind::Text { url: true, .. }, Some(Value::String(s))) if url::Url::parse(s).is_err() => {
            return ui.t("field-error-url")
        }
        _ => {}
    }
    match ui.lang {
        super::i18n::Lang::En => english.to_owned(),
        _ => ui.ta("field-error-other", &[("detail", english.into())]),
    }
}

enum Bound {
    Below(f64),
    Above(f64),
}

fn check_bounds(v: f64, min: Option<f64>, max: Option<f64>) -> Option<Bound> {
    match (min, max) {
        (Some(m), _) if v < m => Some(Bound::Below(m)),
        (_, Some(m)) if v > m => Some(Bound::Above(m)),
        _ => None,
    }
}

/// The text an input shows for a value.
pub fn input_text(kind: &Kind, value: &Value) -> String {
    match (kind, value) {
        (Kind::StringList, Value::Array(items)) => {
            items.iter().map(choice_key).collect::<Vec<_>>().join("\n")
        }
        (Kind::Json, v) => serde_json::to_string_pretty(v).unwrap_or_default(),
        (_, v) => choice_key(v),
    }
}

/// What the page shows about one field beyond the schema.
#[derive(Debug, Default, Clone)]
pub struct FieldState<'a> {
    /// The message of a refused value.
    pub error: Option<&'a str>,
    /// What the user typed, shown again after an error (never for secrets).
    pub typed: Option<&'a str>,
    /// The field was just saved.
    pub saved: bool,
}

/// Everything [`render_field`] needs about the page.
#[derive(Debug)]
pub struct FieldContext<'a> {
    pub instance: &'a str,
    pub record: &'a InstanceRecord,
    /// The configuration with defaults (for conditions).
    pub effective: &'a Map<String, Value>,
    pub model: &'a FormModel,
    pub csrf: &'a str,
    /// The page's language.
    pub ui: &'a Ui,
}

/// Whether a field is shown for the current configuration.
pub fn is_shown(field: &FormField, effective: &Map<String, Value>) -> bool {
    field.shown_when.as_ref().is_none_or(|c| c.holds(effective))
}

fn is_required(field: &FormField, effective: &Map<String, Value>) -> bool {
    field.required
        || field
            .required_when
            .as_ref()
            .is_some_and(|c| c.holds(effective))
}

fn condition_attrs(prefix: &str, c: &Condition) -> String {
    format!(
        " data-{prefix}-tag=\"{}\" data-{prefix}-values=\"{}\"",
        attr(&c.tag),
        attr(&Value::Array(c.values.clone()).to_string())
    )
}

/// One field as its own form.
pub fn render_field(out: &mut String, ctx: &FieldContext<'_>, f: &FormField, st: &FieldState<'_>) {
    let ui = ctx.ui;
    let name = attr(&f.name);
    let shown = is_shown(f, ctx.effective);
    let required = is_required(f, ctx.effective);
    let saved_value = ctx.record.values.get(&f.name);
    let secret_set = ctx.record.secrets.contains_key(&f.name);
    let _ = write!(
        out,
        "<div class=\"field\" id=\"field-{name}\" data-field=\"{name}\" data-kind=\"{}\"{}{}{}>",
        f.kind.name(),
        f.shown_when
            .as_ref()
            .map(|c| condition_attrs("show", c))
            .unwrap_or_default(),
        f.required_when
            .as_ref()
            .map(|c| condition_attrs("require", c))
            .unwrap_or_default(),
        if shown { "" } else { " hidden" }
    );
    let _ = write!(
        out,
        "<form method=\"post\" action=\"/instances/{}/fields/{name}\" class=\"field-form\" novalidate data-enhance=\"field\">\
         <input type=\"hidden\" name=\"_csrf\" value=\"{}\">\
         <input type=\"hidden\" name=\"revision\" value=\"{}\">",
        attr(ctx.instance),
        attr(ctx.csrf),
        ctx.record.revision
    );
    // Label, required mark, state.
    let state = field_state(f, saved_value.is_some(), secret_set);
    let _ = write!(
        out,
        "<div class=\"field-head\"><label for=\"in-{name}\">{}</label>\
         <span class=\"required\"{}>{}</span>\
         <span class=\"state state-{}\" id=\"state-{name}\">{}</span></div>",
        esc(&f.title),
        if required { "" } else { " hidden" },
        esc(&ui.t("field-required")),
        state,
        esc(&state_text(ui, state))
    );
    let mut described = Vec::new();
    if let Some(d) = &f.description {
        let _ = write!(out, "<p class=\"desc\" id=\"desc-{name}\">{}</p>", esc(d));
        described.push(format!("desc-{name}"));
    }
    if let Some(c) = &f.shown_when {
        let tag_title = ctx
            .model
            .field(&c.tag)
            .map(|t| t.title.clone())
            .unwrap_or_else(|| humanize(&c.tag));
        let values = c
            .values
            .iter()
            .map(|v| ctx.model.value_title(ui, &c.tag, v))
            .collect::<Vec<_>>()
            .join(&format!(" {} ", ui.t("list-or")));
        let _ = write!(
            out,
            "<p class=\"cond\" id=\"cond-{name}\">{}</p>",
            ui.html(
                "field-condition-html",
                &[("tag", tag_title.into()), ("values", values.into())]
            )
        );
        described.push(format!("cond-{name}"));
    }
    if f.kind == Kind::StringList {
        let _ = write!(
            out,
            "<p class=\"hint\" id=\"hint-{name}\">{}</p>",
            esc(&ui.t("field-one-per-line"))
        );
        described.push(format!("hint-{name}"));
    }
    described.push(format!("err-{name}"));
    let aria = format!(
        " aria-describedby=\"{}\"{}{}",
        described.join(" "),
        if st.error.is_some() {
            " aria-invalid=\"true\""
        } else {
            ""
        },
        if required {
            " aria-required=\"true\""
        } else {
            ""
        }
    );
    // The value shown in the input: what was typed (after an error), else saved, else default.
    let current: Option<Value> = saved_value.cloned().or_else(|| f.default.clone());
    let text = match st.typed {
        Some(t) if f.kind != Kind::Secret => t.to_owned(),
        _ => current
            .as_ref()
            .map(|v| input_text(&f.kind, v))
            .unwrap_or_default(),
    };
    out.push_str("<div class=\"control\">");
    render_control(out, ui, f, &name, &aria, &text, secret_set);
    out.push_str("</div>");
    // Actions.
    let title = esc(&f.title);
    let _ = write!(
        out,
        "<div class=\"actions\"><button type=\"submit\" name=\"op\" value=\"save\">{}<span class=\"visually-hidden\"> {title}</span></button>",
        esc(&ui.t("field-save"))
    );
    let clear_label = esc(&match (&f.kind, f.default.is_some()) {
        (Kind::Secret, _) => ui.t("field-clear"),
        (_, true) => ui.t("field-reset"),
        (_, false) => ui.t("field-clear"),
    });
    let can_clear = saved_value.is_some() || secret_set;
    let _ = write!(
        out,
        "<button type=\"submit\" name=\"op\" value=\"clear\" class=\"secondary\"{}>{clear_label}<span class=\"visually-hidden\"> {title}</span></button>",
        if can_clear { "" } else { " hidden" }
    );
    let _ = write!(
        out,
        "<span class=\"saved\" id=\"saved-{name}\" role=\"status\">{}</span></div>",
        if st.saved {
            esc(&ui.t("js-saved"))
        } else {
            String::new()
        }
    );
    let _ = write!(
        out,
        "<p class=\"error\" id=\"err-{name}\" aria-live=\"assertive\">{}</p>",
        st.error.map(esc).unwrap_or_default()
    );
    out.push_str("</form></div>");
}

fn render_control(
    out: &mut String,
    ui: &Ui,
    f: &FormField,
    name: &str,
    aria: &str,
    text: &str,
    secret_set: bool,
) {
    let id = format!("in-{name}");
    match &f.kind {
        Kind::Secret => {
            let _ = write!(
                out,
                "<input type=\"password\" id=\"{id}\" name=\"value\" value=\"\" autocomplete=\"new-password\" spellcheck=\"false\" placeholder=\"{}\"{aria}>",
                attr(&if secret_set {
                    ui.t("field-secret-placeholder-set")
                } else {
                    ui.t("field-secret-placeholder-unset")
                })
            );
        }
        Kind::Boolean => {
            let checked = match text {
                "true" => " checked",
                _ => "",
            };
            let _ = write!(
                out,
                "<input type=\"hidden\" name=\"value\" value=\"false\">\
                 <input type=\"checkbox\" id=\"{id}\" name=\"value\" value=\"true\"{checked}{aria}>"
            );
        }
        Kind::Choice(choices) => {
            let _ = write!(out, "<select id=\"{id}\" name=\"value\"{aria}>");
            let selected_known = choices.iter().any(|c| choice_key(&c.value) == text);
            if !selected_known {
                let _ = write!(
                    out,
                    "<option value=\"\" selected>{}</option>",
                    esc(&ui.t("field-choose"))
                );
            }
            for c in choices {
                let key = choice_key(&c.value);
                let _ = write!(
                    out,
                    "<option value=\"{}\" data-value=\"{}\"{}>{}</option>",
                    attr(&key),
                    attr(&c.value.to_string()),
                    if key == text { " selected" } else { "" },
                    esc(&c.title)
                );
            }
            out.push_str("</select>");
        }
        Kind::Integer { min, max } => {
            let _ = write!(
                out,
                "<input type=\"number\" id=\"{id}\" name=\"value\" step=\"1\" inputmode=\"numeric\" value=\"{}\"{}{}{aria}>",
                attr(text),
                min.map(|m| format!(" min=\"{m}\"")).unwrap_or_default(),
                max.map(|m| format!(" max=\"{m}\"")).unwrap_or_default()
            );
        }
        Kind::Number { min, max } => {
            let _ = write!(
                out,
                "<input type=\"number\" id=\"{id}\" name=\"value\" step=\"any\" value=\"{}\"{}{}{aria}>",
                attr(text),
                min.map(|m| format!(" min=\"{m}\"")).unwrap_or_default(),
                max.map(|m| format!(" max=\"{m}\"")).unwrap_or_default()
            );
        }
        Kind::StringList
        | Kind::Json
        | Kind::Text {
            multiline: true, ..
        } => {
            let rows = text.lines().count().clamp(3, 12);
            let _ = write!(
                out,
                "<textarea id=\"{id}\" name=\"value\" rows=\"{rows}\" spellcheck=\"false\"{aria}>{}</textarea>",
                esc(text)
            );
        }
        Kind::Text { url, .. } => {
            let _ = write!(
                out,
                "<input type=\"{}\" id=\"{id}\" name=\"value\" value=\"{}\" spellcheck=\"false\"{aria}>",
                if *url { "url" } else { "text" },
                attr(text)
            );
        }
    }
}

/// The whole form: groups as fieldsets, fields in order.
pub fn render_form(
    out: &mut String,
    ctx: &FieldContext<'_>,
    states: &HashMap<String, FieldState<'_>>,
) {
    for (group, fields) in ctx.model.groups() {
        let any_shown = fields.iter().any(|f| is_shown(f, ctx.effective));
        match group {
            Some(g) => {
                let _ = write!(
                    out,
                    "<fieldset class=\"group\" data-group=\"{}\"{}><legend>{}</legend>",
                    attr(g),
                    if any_shown { "" } else { " hidden" },
                    esc(&humanize(g))
                );
            }
            None => {
                let _ = write!(
                    out,
                    "<fieldset class=\"group\"><legend>{}</legend>",
                    esc(&ctx.ui.t("form-settings"))
                );
            }
        }
        for f in fields {
            let st = states.get(&f.name).cloned().unwrap_or_default();
            render_field(out, ctx, f, &st);
        }
        out.push_str("</fieldset>");
    }
}

/// A field's state: `set`/`unset` for secrets, else `saved`, `default` or `unset`.
pub fn field_state(f: &FormField, saved: bool, secret_set: bool) -> &'static str {
    match (&f.kind, saved, secret_set, f.default.is_some()) {
        (Kind::Secret, _, true, _) => "set",
        (Kind::Secret, _, false, _) => "unset",
        (_, true, _, _) => "saved",
        (_, false, _, true) => "default",
        _ => "unset",
    }
}

/// The words for a [`field_state`].
pub fn state_text(ui: &Ui, state: &str) -> String {
    match state {
        "set" => ui.t("state-set"),
        "saved" => ui.t("state-saved"),
        "default" => ui.t("state-default"),
        _ => ui.t("state-unset"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::i18n::Lang;
    use serde_json::json;

    fn field(kind: Kind) -> FormField {
        FormField {
            name: "f".to_owned(),
            title: "F".to_owned(),
            description: None,
            kind,
            default: None,
            group: None,
            required: false,
            shown_when: None,
            required_when: None,
        }
    }

    #[test]
    fn refusals_are_explained_in_the_pages_language() {
        let fr = Ui::new(Lang::Fr);
        let en = Ui::new(Lang::En);
        let int = field(Kind::Integer {
            min: Some(1),
            max: Some(120),
        });
        assert_eq!(
            explain(
                &fr,
                &int,
                Some(&json!(1500)),
                "1500 is greater than the maximum of 120"
            ),
            "1\u{202f}500 est supérieur au maximum de 120"
        );
        assert_eq!(
            explain(&en, &int, Some(&json!(0)), "ignored"),
            "0 is less than the minimum of 1"
        );
        let number = field(Kind::Number {
            min: Some(0.5),
            max: None,
        });
        assert_eq!(
            explain(&fr, &number, Some(&json!(0.25)), ""),
            "0,25 est inférieur au minimum de 0,5"
        );
        let url = field(Kind::Text {
            url: true,
            multiline: false,
        });
        assert!(explain(&fr, &url, Some(&json!("not a url")), "").starts_with("une URL complète"));
        assert_eq!(explain(&fr, &url, None, ""), "ce champ est obligatoire");
        // Anything else: the validator's words, after a French lead.
        assert_eq!(
            explain(
                &fr,
                &url,
                Some(&json!("https://x.test/")),
                "\"https://x.test/\" does not match \"^ftp\""
            ),
            "Valeur refusée. Détail (en anglais)\u{a0}: \"https://x.test/\" does not match \"^ftp\""
        );
        assert_eq!(
            explain(&en, &url, Some(&json!("https://x.test/")), "as is"),
            "as is"
        );
    }

    #[test]
    fn typed_values_of_the_wrong_type_are_refused_in_the_pages_language() {
        let fr = Ui::new(Lang::Fr);
        let int = field(Kind::Integer {
            min: None,
            max: None,
        });
        let e = check_input(&int, " 1,5 ").unwrap_err();
        assert_eq!(e, InputError::NotInteger("1,5".to_owned()));
        assert_eq!(e.message(&fr), "un nombre entier est attendu, reçu \"1,5\"");
        assert_eq!(
            parse_input(&int, "x").unwrap_err(),
            "expected a whole number, got \"x\""
        );
        let choice = field(Kind::Choice(vec![
            Choice {
                value: json!("a"),
                title: "Alpha".to_owned(),
            },
            Choice {
                value: json!("b"),
                title: "Bêta".to_owned(),
            },
        ]));
        assert_eq!(
            check_input(&choice, "c").unwrap_err().message(&fr),
            "choisissez parmi\u{a0}: Alpha, Bêta"
        );
    }
}
