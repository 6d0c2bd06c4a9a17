//! The resources the plugin uses: users' calendars and events, the calendar view, single
//! value extended properties, with Graph's checks (application permissions, mailbox
//! access policies, throttling, concurrency per mailbox).

use super::*;

impl Shared {
    pub(super) fn new(opts: GraphOptions) -> Self {
        Shared {
            latency_ms: AtomicU64::new(opts.latency_ms),
            mailboxes: opts.mailboxes.iter().map(|m| m.to_lowercase()).collect(),
            opts,
            base_url: Mutex::new(String::new()),
            events: Mutex::new(BTreeMap::new()),
            tokens: Mutex::new(HashMap::new()),
            tokens_issued: AtomicUsize::new(0),
            policies: Mutex::new(HashMap::new()),
            expired: Mutex::new(HashSet::new()),
            throttle: Mutex::new((0, 0)),
            throttled: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            per_mailbox: Mutex::new(HashMap::new()),
            max_per_mailbox: AtomicUsize::new(0),
            requests: Mutex::new(Vec::new()),
            counter: AtomicU64::new(1),
        }
    }

    pub(super) fn next(&self) -> u64 {
        self.counter.fetch_add(1, Ordering::SeqCst)
    }

    pub(super) fn change_key(&self) -> String {
        let n = self.next();
        base64::engine::general_purpose::STANDARD.encode(format!("ZlnW4RIAV06KYYwl{n:012}"))
    }

    pub(super) fn new_event(&self, mailbox: &str) -> StoredEvent {
        let n = self.next();
        StoredEvent {
            // Outlook ids are URL-safe base64 and may end with '='.
            id: format!(
                "AAMkAGI1{}=",
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .encode(format!("{mailbox}/{n:010}"))
            ),
            change_key: self.change_key(),
            mailbox: mailbox.to_owned(),
            subject: String::new(),
            body: String::new(),
            body_type: "text".into(),
            start: 0,
            end: 0,
            start_zone: "UTC".into(),
            end_zone: "UTC".into(),
            is_all_day: false,
            is_reminder_on: true,
            location: String::new(),
            properties: BTreeMap::new(),
        }
    }

    /// Counts a request in flight; `Err` past the mailbox's concurrency limit.
    pub(super) fn enter(&self, mailbox: Option<&str>) -> (InFlight<'_>, bool) {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        let mut over = false;
        if let Some(m) = mailbox {
            let mut per = lock(&self.per_mailbox);
            let n = per.entry(m.to_owned()).or_insert(0);
            *n += 1;
            self.max_per_mailbox.fetch_max(*n, Ordering::SeqCst);
            over = *n > MAILBOX_CONCURRENCY;
        }
        (
            InFlight {
                shared: self,
                mailbox: mailbox.map(str::to_owned),
            },
            over,
        )
    }

    pub(super) fn authenticate(&self, headers: &HeaderMap) -> Result<Grant, GraphError> {
        let auth = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let Some(token) = auth.strip_prefix("Bearer ") else {
            return Err(error(
                StatusCode::UNAUTHORIZED,
                "InvalidAuthenticationToken",
                "Access token is empty.",
            ));
        };
        match lock(&self.tokens).get(token.trim()) {
            Some(grant) if grant.expiry > Instant::now() => Ok(grant.clone()),
            Some(_) => Err(error(
                StatusCode::UNAUTHORIZED,
                "InvalidAuthenticationToken",
                "Lifetime validation failed, the token is expired.",
            )),
            None => Err(error(
                StatusCode::UNAUTHORIZED,
                "InvalidAuthenticationToken",
                "Access token validation failure. Invalid audience.",
            )),
        }
    }

    /// The checks every mailbox request passes, in Graph's order.
    pub(super) fn admit(
        &self,
        grant: &Grant,
        mailbox: &str,
        write: bool,
    ) -> Result<(), GraphError> {
        {
            let mut throttle = lock(&self.throttle);
            if throttle.0 > 0 {
                throttle.0 -= 1;
                self.throttled.fetch_add(1, Ordering::SeqCst);
                return Err(GraphError {
                    retry_after: Some(throttle.1),
                    ..error(
                        StatusCode::TOO_MANY_REQUESTS,
                        "ApplicationThrottled",
                        "Application is over its MailboxConcurrency limit.",
                    )
                });
            }
        }
        if !self.mailboxes.contains(mailbox) {
            return Err(error(
                StatusCode::NOT_FOUND,
                "ErrorInvalidUser",
                format!("The requested user '{mailbox}' is invalid."),
            ));
        }
        let has = |role: &str| grant.roles.iter().any(|r| r == role);
        let allowed = if write {
            has("Calendars.ReadWrite")
        } else {
            has("Calendars.ReadWrite") || has("Calendars.Read") || has("Calendars.ReadBasic")
        };
        if !allowed {
            return Err(error(
                StatusCode::FORBIDDEN,
                "ErrorAccessDenied",
                "Access is denied. Check credentials and try again.",
            ));
        }
        if let Some(allowed) = lock(&self.policies).get(&grant.client_id) {
            if !allowed.contains(mailbox) {
                return Err(error(
                    StatusCode::FORBIDDEN,
                    "ErrorAccessDenied",
                    "Access to OData is disabled: [RAOP] : Blocked by tenant configured AppOnly AccessPolicy settings.",
                ));
            }
        }
        Ok(())
    }

    pub(super) fn route(
        &self,
        method: &Method,
        segments: &[String],
        query: &[(String, String)],
        headers: &HeaderMap,
        body: &[u8],
        grant: &Grant,
    ) -> Answer {
        let mailbox = segments[2].to_lowercase();
        let rest: Vec<&str> = segments[3..].iter().map(String::as_str).collect();
        let write = !matches!(*method, Method::GET);
        self.admit(grant, &mailbox, write)?;
        let zone = prefer_zone(headers);
        match (method, rest.as_slice()) {
            (&Method::GET, ["calendar"]) => Ok((
                StatusCode::OK,
                Some(json!({
                    "@odata.context": format!("{}/v1.0/$metadata#users('{mailbox}')/calendar/$entity", lock(&self.base_url)),
                    "id": format!("AAMkAGI1calendar{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&mailbox)),
                    "name": "Calendar",
                    "color": "auto",
                    "canEdit": true,
                    "canShare": true,
                    "canViewPrivateItems": true,
                    "owner": {"name": mailbox, "address": mailbox},
                })),
            )),
            (&Method::GET, ["calendarView"] | ["calendar", "calendarView"]) => {
                self.calendar_view(&mailbox, query, zone)
            }
            (&Method::POST, ["events"]) => self.create(&mailbox, body, zone),
            (&Method::GET, ["events", id]) => {
                let event = self.owned(&mailbox, id)?;
                Ok((StatusCode::OK, Some(self.render(&event, zone, query)?)))
            }
            (&Method::PATCH, ["events", id]) => self.update(&mailbox, id, body, zone),
            (&Method::DELETE, ["events", id]) => {
                self.owned(&mailbox, id)?;
                lock(&self.events).remove(*id);
                Ok((StatusCode::NO_CONTENT, None))
            }
            _ => Err(error(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                format!(
                    "Resource not found for the segment '{}'.",
                    rest.first().copied().unwrap_or_default()
                ),
            )),
        }
    }

    pub(super) fn owned(&self, mailbox: &str, id: &str) -> Result<StoredEvent, GraphError> {
        lock(&self.events)
            .get(id)
            .filter(|e| e.mailbox == mailbox)
            .cloned()
            .ok_or_else(|| {
                error(
                    StatusCode::NOT_FOUND,
                    "ErrorItemNotFound",
                    "The specified object was not found in the store.",
                )
            })
    }

    pub(super) fn calendar_view(
        &self,
        mailbox: &str,
        query: &[(String, String)],
        zone: (String, i32),
    ) -> Answer {
        let param = |name: &str| {
            query
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        let (Some(start), Some(end)) = (param("startDateTime"), param("endDateTime")) else {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "ErrorInvalidParameter",
                "This request requires a time window specified by the query string parameters StartDateTime and EndDateTime.",
            ));
        };
        let bad = |name: &str, value: &str| {
            error(
                StatusCode::BAD_REQUEST,
                "ErrorInvalidParameter",
                format!("The value '{value}' of parameter '{name}' is invalid."),
            )
        };
        let from = parse_query_time(start).ok_or_else(|| bad("StartDateTime", start))?;
        let to = parse_query_time(end).ok_or_else(|| bad("EndDateTime", end))?;
        let top: usize = match param("$top") {
            Some(t) => t.parse().map_err(|_| bad("$top", t))?,
            None => 10,
        };
        let top = top.clamp(1, 1000);
        let skip: usize = match param("$skip") {
            Some(s) => s.parse().map_err(|_| bad("$skip", s))?,
            None => 0,
        };
        let mut matching: Vec<StoredEvent> = lock(&self.events)
            .values()
            .filter(|e| e.mailbox == mailbox && overlaps(e.start, e.end, from, to))
            .cloned()
            .collect();
        matching.sort_by(|a, b| (a.start, &a.id).cmp(&(b.start, &b.id)));
        let page: Vec<Value> = matching
            .iter()
            .skip(skip)
            .take(top)
            .map(|e| self.render(e, zone.clone(), query))
            .collect::<Result<_, _>>()?;
        let base = lock(&self.base_url).clone();
        let mut out = json!({
            "@odata.context": format!("{base}/v1.0/$metadata#users('{mailbox}')/calendarView"),
            "value": page,
        });
        if skip + top < matching.len() {
            let mut pairs: Vec<(String, String)> = query
                .iter()
                .filter(|(k, _)| k != "$skip")
                .cloned()
                .collect();
            pairs.push(("$skip".into(), (skip + top).to_string()));
            let encoded = pairs
                .iter()
                .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
                .collect::<Vec<_>>()
                .join("&");
            out["@odata.nextLink"] = Value::from(format!(
                "{base}/v1.0/users/{mailbox}/calendarView?{encoded}"
            ));
        }
        Ok((StatusCode::OK, Some(out)))
    }

    pub(super) fn create(&self, mailbox: &str, body: &[u8], zone: (String, i32)) -> Answer {
        let fields = read_body(body)?;
        if !fields.contains_key("start") || !fields.contains_key("end") {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "ErrorPropertyValidationFailure",
                "At least one property failed validation: start and end are required.",
            ));
        }
        let mut event = self.new_event(mailbox);
        event.is_reminder_on = true;
        apply(&mut event, &fields)?;
        let rendered = self.render(&event, zone, &[])?;
        lock(&self.events).insert(event.id.clone(), event);
        Ok((StatusCode::CREATED, Some(rendered)))
    }

    pub(super) fn update(
        &self,
        mailbox: &str,
        id: &str,
        body: &[u8],
        zone: (String, i32),
    ) -> Answer {
        let fields = read_body(body)?;
        let mut event = self.owned(mailbox, id)?;
        apply(&mut event, &fields)?;
        event.change_key = self.change_key();
        let rendered = self.render(&event, zone, &[])?;
        lock(&self.events).insert(event.id.clone(), event);
        Ok((StatusCode::OK, Some(rendered)))
    }

    /// The event's JSON: `$select`ed properties (all without one), times in `zone`, and
    /// the extended properties `$expand` names.
    pub(super) fn render(
        &self,
        e: &StoredEvent,
        zone: (String, i32),
        query: &[(String, String)],
    ) -> Result<Value, GraphError> {
        let param = |name: &str| {
            query
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let time = |t: i64| json!({"dateTime": graph_time(t, zone.1), "timeZone": zone.0});
        let mut all = Map::new();
        all.insert(
            "@odata.etag".into(),
            Value::from(format!("W/\"{}\"", e.change_key)),
        );
        all.insert("id".into(), Value::from(e.id.clone()));
        all.insert("changeKey".into(), Value::from(e.change_key.clone()));
        all.insert("categories".into(), json!([]));
        all.insert(
            "originalStartTimeZone".into(),
            Value::from(e.start_zone.clone()),
        );
        all.insert(
            "originalEndTimeZone".into(),
            Value::from(e.end_zone.clone()),
        );
        all.insert("reminderMinutesBeforeStart".into(), Value::from(15));
        all.insert("isReminderOn".into(), Value::from(e.is_reminder_on));
        all.insert("subject".into(), Value::from(e.subject.clone()));
        all.insert(
            "bodyPreview".into(),
            Value::from(e.body.chars().take(255).collect::<String>()),
        );
        all.insert("isAllDay".into(), Value::from(e.is_all_day));
        all.insert("isCancelled".into(), Value::from(false));
        all.insert("showAs".into(), Value::from("busy"));
        all.insert("type".into(), Value::from("singleInstance"));
        all.insert(
            "body".into(),
            json!({"contentType": e.body_type, "content": e.body}),
        );
        all.insert("start".into(), time(e.start));
        all.insert("end".into(), time(e.end));
        all.insert(
            "location".into(),
            json!({"displayName": e.location, "locationType": "default", "uniqueIdType": "unknown"}),
        );
        let mut out = match param("$select") {
            Some(select) => {
                let wanted: HashSet<&str> = select.split(',').map(str::trim).collect();
                all.into_iter()
                    .filter(|(k, _)| k == "id" || k == "@odata.etag" || wanted.contains(k.as_str()))
                    .collect()
            }
            None => all,
        };
        if let Some(expand) = param("$expand") {
            let ids = expand_filter(expand).ok_or_else(|| {
                error(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    format!("Invalid $expand: '{expand}'; expected singleValueExtendedProperties($filter=id eq '{{id}}')."),
                )
            })?;
            let props: Vec<Value> = e
                .properties
                .iter()
                .filter(|(id, _)| ids.iter().any(|want| same_property(want, id)))
                .map(|(id, value)| json!({"id": id, "value": value}))
                .collect();
            // Graph leaves the collection out when no property matches.
            if !props.is_empty() {
                out.insert("singleValueExtendedProperties".into(), Value::from(props));
            }
        }
        Ok(Value::Object(out))
    }
}
