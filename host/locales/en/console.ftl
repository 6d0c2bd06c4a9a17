# The web console's texts in English, the reference language.
#
# Each entry has the same id in every language (host/locales/<lang>/console.ftl); a test
# checks that both files have the same ids and variables. Entries whose id ends in `-html`
# hold markup; their { $variables } are escaped by the console before they are placed.

## Page frame

skip-to-content = Skip to content
nav-label = Main
nav-instances = Instances
nav-plugins = Plugins
nav-audit = Audit history
nav-webhooks = Webhooks
signed-in-as = Signed in as { $user }
sign-out = Sign out
language-label = Language
colon = :
list-or = or

## Texts the script shows (%s is where it puts its value)

js-saving = Saving…
js-clearing = Clearing…
js-saved = Saved.
js-cleared = Cleared.
js-server-answered = The server answered { $status }. Reload the page and try again.
js-unreachable = The server could not be reached ({ $error }).
js-testing = Testing…
js-testing-unsaved = Testing with { $count } unsaved value(s)…
js-session-ended = Your session has ended: reload the page and sign in again.
js-form-expired = This page has expired or did not come from this console: reload it and try again.

## Errors

error-title = Error
back-to-instances = Back to the instances
not-found-title = Not found
not-found-body-html = <h1>Not found</h1><p><a href="/instances">Go to the instances</a></p>
refused-title = Refused
refused-body-html = <h1>Refused</h1><p class="problem" role="alert">This form has expired or did not come from this console. Go back, reload the page and try again.</p>
status-bad-request = Bad Request
status-forbidden = Forbidden
status-not-found = Not Found
status-conflict = Conflict
status-unprocessable = Unprocessable Entity
status-too-many-requests = Too Many Requests
status-server-error = Internal Server Error
error-with-detail = { $lead } { $detail }
error-stale-revision = Someone else changed this instance in the meantime; reload the page and try again.
error-not-found = Not found.
error-already-exists = An instance with this id already exists.
error-invalid-id = This instance id is not valid.
error-invalid-value = This value is refused.
error-invalid-configuration = The configuration is not complete or not valid.
error-unknown-plugin = This plugin is not loaded.
error-instance-disabled = This instance is disabled.
error-rate-limited = Too many requests; wait a moment and try again.
error-provider = The provider did not answer as expected.
error-internal = Internal error; the server log has the details.
error-other = The request was refused.

## Sign-in

login-title = Sign in
login-user-name = User name
login-password = Password
login-submit = Sign in
login-hint-html = The account <code>admin</code> is created on first start; change its password with <code>passerelle admin set-password</code>.
login-not-understood = The sign-in form was not understood; try again.
login-expired = This sign-in form has expired or did not come from this site; sign in again.
login-rate-limited = Too many failed sign-ins. Wait { $seconds } seconds and try again.
login-wrong = Wrong user name or password.
failed-sign-ins-html = { $count ->
        [one] { $count } failed sign-in attempt
       *[other] { $count } failed sign-in attempts
    } for <code>{ $user }</code> since the previous sign-in, from { $addresses }. If they were not yours, make sure the password is long and unique (<code>passerelle admin set-password</code>).

## Plugins

plugins-title = Plugins
plugins-none-html = No plugin is loaded. Put plugin libraries in a plugin directory (see <code>passerelle --help</code>) and restart.
plugins-loaded = Loaded plugins
plugins-unsigned = Unsigned
plugins-none-refused = No file was refused.
plugins-refused = Refused files
plugins-recent-changes = Recent plugin changes

## Table columns

col-id = Id
col-name = Name
col-version = Version
col-category = Category
col-capabilities = Capabilities
col-plugin-api = Plugin API
col-file = File
col-signed-by = Signed by
col-reason = Reason
col-instance = Instance
col-plugin = Plugin
col-status = Status
col-last-test = Last test
col-revision = Revision
col-step = Step
col-time = Time
col-detail = Detail
col-when = When
col-who = Who
col-what = What
col-field = Field
col-change = Change

## Statuses

status-ok = OK
status-warning = Warning
status-failed = Failed
status-skipped = Skipped
instance-enabled = Enabled
instance-disabled = Disabled

## Instances

instances-title = Instances
instances-none = No instance yet. Create one below.
instances-configured = Configured instances
instances-not-tested = Not tested
create-title = Create an instance
create-no-plugin = No plugin is loaded, so no instance can be created.
create-id = Instance id
create-id-hint-html = Lowercase letters, digits, '-' or '_', e.g. <code>sirene-prod</code>.
create-plugin = Plugin
create-submit = Create

## One instance

instance-crumbs-html = <a href="/instances">Instances</a> › { $id }
instance-subtitle-html = { $name } · plugin <code>{ $plugin }</code>
instance-fix-first = Fix these first
instance-state = Instance state
instance-revision-html = revision <span id="revision">{ $revision }</span>
instance-enable = Enable
instance-disable = Disable
test-button = Test
test-heading = Test
test-never-html = Not tested yet. <strong>Test</strong> checks the connection with the values on this page, saved or not.
test-unsaved-note = (with unsaved values; not recorded)
test-steps = Test steps
config-heading = Configuration
config-intro-html = Each field is saved on its own with its <strong>Save</strong> button. Secrets are never shown: only whether they are set.
history-heading = Recent changes
history-none = No change recorded yet.
history-full = Full history of { $id }
delete-heading = Delete
delete-confirm = Delete instance { $id } and its saved values?
delete-button = Delete this instance

## Fields

form-settings = Settings
field-required = required
field-save = Save
field-clear = Clear
field-reset = Reset to default
field-choose = — choose —
field-one-per-line = One per line.
field-condition-html = Used when <em>{ $tag }</em> is <em>{ $values }</em>.
field-secret-placeholder-set = set — type a new value to replace it
field-secret-placeholder-unset = not set
field-secret-empty = type the new value first; to remove the saved one, use Clear
field-unknown = this plugin has no such field
state-set = set
state-unset = not set
state-saved = saved
state-default = default
value-on = on
value-off = off
input-not-integer = expected a whole number, got { $typed }
input-not-number = expected a number, got { $typed }
input-not-on-off = expected on or off, got { $typed }
input-not-a-choice = choose one of: { $choices }
input-not-json = expected JSON: { $detail }
field-error-minimum = { $typed } is less than the minimum of { $minimum }
field-error-maximum = { $typed } is greater than the maximum of { $maximum }
field-error-required = this field is required
field-error-url = expected a full URL such as https://example.com/path
field-error-other = { $detail }

## Audit history

audit-title = Audit history
audit-all = All
audit-show = Show
audit-none = No change recorded.
audit-caption = Changes, newest first

## Audit actions and values

action-instance-create = Instance created
action-field-set = Field set
action-field-clear = Field cleared
action-instance-enable = Instance enabled
action-instance-disable = Instance disabled
action-instance-delete = Instance deleted
action-instance-test = Test run
action-token-create = API token created
action-token-revoke = API token revoked
action-set-password = Password changed
audit-default = (default) { $value }
audit-unset = (unset)
audit-secret-changed = changed
audit-secret-cleared = cleared
audit-created = plugin { $plugin }
audit-deleted = plugin { $plugin }, revision { $revision }
audit-test = { $status }; { $what }
audit-test-saved = saved values
audit-test-unsaved = unsaved values of: { $fields }

## Webhooks page
webhooks-title = Webhooks
webhooks-intro = Events (signatures completed, invoice statuses, failed tests…) are sent to these addresses as signed HTTP POSTs, retried for three days. The README explains how the ERP checks the signature.
webhooks-none = No webhook yet.
webhooks-caption-webhooks = Webhooks
webhooks-col-id = Id
webhooks-col-url = Address
webhooks-col-events = Events
webhooks-col-actions = Actions
webhooks-test = Send a test
webhooks-remove = Remove
webhooks-add-title = Add a webhook
webhooks-url-label = Address of the ERP's receiver
webhooks-events-label = Events
webhooks-events-hint = * for every event, or types separated by commas:
webhooks-secret-label = Signing secret
webhooks-secret-hint = 16 characters at least, e.g. from openssl rand -hex 32. Keep a copy for the receiver: it is never shown again.
webhooks-add = Add
webhooks-caption-deliveries = Recent deliveries, newest first
webhooks-no-delivery = No delivery yet.
webhooks-col-event = Event
webhooks-col-type = Type
webhooks-col-instance = Instance
webhooks-col-webhook = Webhook
webhooks-col-state = State
webhooks-col-attempts = Attempts
webhooks-col-last = Last answer
webhooks-replay = Send again
webhooks-state-pending = pending
webhooks-state-delivered = delivered
webhooks-state-failed = given up
webhooks-ping-ok = Test delivered
webhooks-ping-failed = Test not delivered
webhooks-replayed = Queued again
webhooks-error = Refused
