// Drives the Passerelle web console in headless Chromium, as an administrator would, for the
// end-to-end test tests/e2e/tests/console.rs (which starts `passerelle serve` and the Sirene
// emulator, then runs this script). Every check throws on failure with what was expected.
// The scenario runs in English (the browser's language), switches to French with the
// switcher in the page header and checks the same steps there (texts, refusals, the script's
// messages, dates and numbers in French format, the choice remembered), then a browser whose
// language is French gets the sign-in page in French, and the switcher brings English back.
//
// Environment: CONSOLE_URL, ADMIN_PASSWORD, SIRENE_BASE_URL, SIRENE_API_KEY, SCREENSHOT,
// CHROMIUM (default /usr/bin/chromium).

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chromium } from 'playwright-core';

const env = (name, fallback) => {
  const v = process.env[name] ?? fallback;
  if (v === undefined) throw new Error(`${name} is not set`);
  return v;
};
const URL_ = env('CONSOLE_URL');
const PASSWORD = env('ADMIN_PASSWORD');
const SIRENE = env('SIRENE_BASE_URL');
const KEY = env('SIRENE_API_KEY');
const SCREENSHOT = env('SCREENSHOT');
const CHROMIUM = env('CHROMIUM', '/usr/bin/chromium');
if (!existsSync(CHROMIUM)) {
  throw new Error(`${CHROMIUM} not found: install Debian's chromium (the install step of .ci/run)`);
}

const started = Date.now();
const log = (msg) => console.log(`ok - ${msg} [${((Date.now() - started) / 1000).toFixed(1)} s]`);
const TIMEOUT = 20_000;

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  timeout: 60_000,
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--no-first-run',
  ],
});

try {
  // ----- anonymous -----
  const anon = await fetch(`${URL_}/api/instances`);
  assert.equal(anon.status, 401);
  assert.equal((await anon.json()).code, 'unauthenticated');
  log('the API refuses a request without a session or token');

  const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
  context.setDefaultTimeout(TIMEOUT);
  const page = await context.newPage();
  const consoleErrors = [];
  // Script errors fail the test; the 401/403/422 answers this scenario provokes on purpose
  // show up as "Failed to load resource" and are not script errors.
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) consoleErrors.push(m.text());
  });
  page.on('pageerror', (e) => consoleErrors.push(String(e)));

  await page.goto(`${URL_}/instances`);
  assert.match(page.url(), /\/login\?next=\/instances$/);
  log('a page without a session leads to the sign-in page');

  // ----- sign in -----
  await page.getByLabel('User name').fill('admin');
  await page.getByLabel('Password').fill('not the password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#login-error').getByText('Wrong user name or password').waitFor();
  await page.getByLabel('User name').fill('admin');
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${URL_}/instances`);
  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name === 'passerelle_session');
  assert.ok(session, 'session cookie');
  assert.equal(session.httpOnly, true);
  assert.equal(session.sameSite, 'Strict');
  log('sign-in: a wrong password is refused; the session cookie is HttpOnly and SameSite=Strict');

  // ----- create the instance -----
  await page.getByLabel('Instance id').fill('sirene');
  await page.getByLabel('Plugin').selectOption('sirene');
  await page.getByRole('button', { name: 'Create' }).click();
  await page.waitForURL(`${URL_}/instances/sirene`);
  await page.getByRole('heading', { name: /sirene/ }).first().waitFor();
  log('instance sirene created from the instance list');

  // ----- conditional fields follow the choice -----
  const field = (name) => page.locator(`#field-${name}`);
  assert.equal(await field('api_key').isVisible(), true);
  assert.equal(await field('client_id').isVisible(), false);
  assert.equal(await field('api_key').locator('.required').isVisible(), true);
  await page.getByLabel('Authentication', { exact: true }).selectOption('oauth2');
  await field('client_id').waitFor({ state: 'visible' });
  assert.equal(await field('client_secret').isVisible(), true);
  assert.equal(await field('api_key').isVisible(), false);
  await page.getByLabel('Authentication', { exact: true }).selectOption('api_key');
  await field('client_id').waitFor({ state: 'hidden' });
  assert.equal(await field('api_key').isVisible(), true);
  log('OAuth fields are shown only when Authentication is OAuth2');

  // ----- field by field -----
  const save = async (name, title) => {
    await page.getByRole('button', { name: `Save ${title}`, exact: true }).click();
    await page.locator(`#saved-${name}`).getByText('Saved.').waitFor();
    assert.equal(await page.locator(`#err-${name}`).textContent(), '');
  };
  await page.getByLabel('API base URL').fill(SIRENE);
  await save('base_url', 'API base URL');
  assert.equal(await page.locator('#state-base_url').textContent(), 'saved');
  log('API base URL saved on its own');

  await page.getByLabel('Timeout (seconds)').fill('500');
  await page.getByRole('button', { name: 'Save Timeout (seconds)', exact: true }).click();
  const err = page.locator('#err-timeout_secs');
  await err.getByText('500 is greater than the maximum of 120').waitFor();
  assert.equal(await page.getByLabel('Timeout (seconds)').inputValue(), '500');
  assert.equal(await page.getByLabel('Timeout (seconds)').getAttribute('aria-invalid'), 'true');
  // The error is tied to the input for screen readers.
  const describedBy = await page.getByLabel('Timeout (seconds)').getAttribute('aria-describedby');
  assert.ok(describedBy.split(' ').includes('err-timeout_secs'), describedBy);
  log('an invalid value shows the validator message next to the field and keeps the typed value');

  // Keyboard only: type, Enter saves the field; Tab reaches its Save button.
  const timeout = page.getByLabel('Timeout (seconds)');
  await timeout.focus();
  await page.keyboard.press('Control+A');
  await page.keyboard.type('15');
  await page.keyboard.press('Enter');
  await page.locator('#saved-timeout_secs').getByText('Saved.').waitFor();
  assert.equal(await err.textContent(), '');
  await timeout.focus();
  await page.keyboard.press('Tab');
  const focused = await page.evaluate(() => document.activeElement.textContent);
  assert.equal(focused, 'Save Timeout (seconds)');
  log('keyboard: Enter saves a field, Tab reaches its Save button');

  await page.getByLabel('API key').fill(KEY);
  await save('api_key', 'API key');
  assert.equal(await page.locator('#state-api_key').textContent(), 'set');
  assert.equal(await page.getByLabel('API key').inputValue(), '');
  await page.reload();
  assert.equal(await page.locator('#state-api_key').textContent(), 'set');
  assert.equal(await page.getByLabel('API key').inputValue(), '');
  assert.ok(!(await page.content()).includes(KEY), 'the secret is in the page');
  log('the secret shows only as "set", never its value');

  // ----- test -----
  await page.getByRole('button', { name: 'Test', exact: true }).click();
  const steps = page.locator('#test-result table.steps tbody tr');
  await steps.first().waitFor();
  const rows = await steps.evaluateAll((trs) => trs.map((tr) => Array.from(tr.children).map((c) => c.textContent.trim())));
  assert.ok(rows.length >= 2, JSON.stringify(rows));
  assert.deepEqual(rows[0].slice(0, 2), ['reach service', 'OK'], JSON.stringify(rows));
  for (const r of rows) assert.match(r[2], /^\d+ ms$/, JSON.stringify(r));
  assert.match(await page.locator('#test-result .report-summary').textContent(), /OK/);
  log(`Test shows ${rows.length} steps with status and timing: ${rows.map((r) => `${r[0]} ${r[1]} ${r[2]}`).join('; ')}`);

  // ----- enable -----
  await page.getByRole('button', { name: 'Enable', exact: true }).click();
  await page.getByRole('button', { name: 'Disable', exact: true }).waitFor();
  assert.match(await page.locator('.bar .status').textContent(), /Enabled/);
  log('instance enabled after the whole configuration was checked');

  // ----- refused without the CSRF token -----
  const refused = await page.evaluate(async () => {
    const put = await fetch('/api/instances/sirene/fields/timeout_secs', {
      method: 'PUT', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ value: 20 }),
    });
    const form = await fetch('/instances/sirene/fields/timeout_secs', {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'value=20',
    });
    const me = await (await fetch('/api/session')).json();
    const withToken = await fetch('/api/instances/sirene/fields/timeout_secs', {
      method: 'PUT', headers: { 'content-type': 'application/json', 'x-csrf-token': me.csrf_token },
      body: JSON.stringify({ value: 16 }),
    });
    return { put: put.status, code: (await put.json()).code, form: form.status, withToken: withToken.status };
  });
  assert.deepEqual(refused, { put: 403, code: 'csrf_failed', form: 403, withToken: 200 });
  log('a change without the CSRF token is refused (403 csrf_failed); with it, accepted');

  // ----- audit -----
  await page.getByRole('link', { name: 'Full history of sirene' }).click();
  await page.waitForURL(`${URL_}/audit?instance=sirene`);
  const audit = await page.locator('table.audit tbody tr').evaluateAll((trs) => trs.map((tr) => Array.from(tr.children).map((c) => c.textContent.trim())));
  const find = (f) => audit.find((r) => r[4] === f);
  assert.ok(find('base_url'), JSON.stringify(audit));
  assert.equal(find('base_url')[1], 'admin');
  assert.equal(find('base_url')[5], `(default) https://api.insee.fr/api-sirene/3.11 → ${SIRENE}`);
  assert.equal(find('api_key')[5], 'changed');
  assert.ok(audit.some((r) => r[3] === 'Instance enabled' && r[5] === 'disabled → enabled'));
  assert.ok(audit.some((r) => r[4] === 'timeout_secs' && r[5] === '(default) 10 → 15'));
  assert.ok(!(await page.content()).includes(KEY));
  log(`the audit history shows who changed what (${audit.length} entries), the secret only as "changed"`);

  // ----- in French, chosen with the switcher -----
  await page.goto(`${URL_}/instances/sirene`);
  assert.equal(await page.getAttribute('html', 'lang'), 'en');
  await page.getByRole('navigation', { name: 'Language' }).getByRole('link', { name: 'Français' }).click();
  await page.waitForURL(`${URL_}/instances/sirene?lang=fr`);
  assert.equal(await page.getAttribute('html', 'lang'), 'fr');
  await page.getByRole('heading', { name: 'Configuration' }).waitFor();
  assert.match(await page.locator('.bar .status').textContent(), /Activée/);
  await page.getByRole('button', { name: 'Désactiver', exact: true }).waitFor();
  await page.getByRole('link', { name: 'Historique', exact: true }).waitFor();
  assert.equal(await page.locator('#state-api_key').textContent(), 'défini');
  assert.equal(await page.getByLabel("Clé d'API").getAttribute('placeholder'), 'défini — saisissez une nouvelle valeur pour le remplacer');
  // The plugin's own texts come from its French catalog (plugins/sirene/locales/fr.ftl).
  await page.getByText("Durée d'attente maximale de chaque réponse de l'INSEE avant d'abandonner.").waitFor();
  log('the switcher turns the page into French: <html lang="fr">, states, buttons, navigation, the plugin\'s field titles and descriptions');

  await page.getByLabel("Délai d'attente (secondes)").fill('500');
  await page.getByRole('button', { name: "Enregistrer Délai d'attente (secondes)", exact: true }).click();
  await err.getByText('500 est supérieur au maximum de 120').waitFor();
  await page.getByLabel("Délai d'attente (secondes)").fill('14');
  await page.getByRole('button', { name: "Enregistrer Délai d'attente (secondes)", exact: true }).click();
  await page.locator('#saved-timeout_secs').getByText('Enregistré.').waitFor();
  assert.equal(await err.textContent(), '');
  assert.equal(await page.locator('#state-timeout_secs').textContent(), 'enregistré');
  log('in French, a refused value is explained in French and the script says "Enregistré."');

  // A form whose CSRF token no longer matches: the script words the refusal in French.
  await page.locator('#field-timeout_secs input[name="_csrf"]').evaluate((i) => { i.value = 'stale'; });
  await page.getByLabel("Délai d'attente (secondes)").fill('13');
  await page.getByRole('button', { name: "Enregistrer Délai d'attente (secondes)", exact: true }).click();
  await err.getByText('Cette page a expiré ou ne vient pas de cette console').waitFor();
  await page.getByLabel("Délai d'attente (secondes)").fill('14');
  log('an expired form is refused with a French message from the script');

  await page.getByRole('button', { name: 'Tester', exact: true }).click();
  await page.locator('#test-result table.steps caption').getByText('Étapes du test').waitFor();
  const frRows = await steps.evaluateAll((trs) => trs.map((tr) => Array.from(tr.children).map((c) => c.textContent.trim())));
  assert.ok(frRows.length >= 2, JSON.stringify(frRows));
  assert.ok(frRows.some((r) => r[0].includes('Joindre le service')), JSON.stringify(frRows));
  for (const r of frRows) assert.match(r[2], /^\d{1,3}(\u202f\d{3})*\u00a0ms$/, JSON.stringify(r));
  const frWhen = await page.locator('#test-result .when').textContent();
  const FR_DATE = /^\d{1,2} (janv\.|févr\.|mars|avr\.|mai|juin|juil\.|août|sept\.|oct\.|nov\.|déc\.) \d{4}, \d{2}:\d{2} UTC$/;
  assert.match(frWhen, FR_DATE);
  log(`Tester shows the steps with French durations and date (${frWhen})`);

  await page.reload();
  assert.equal(await page.getAttribute('html', 'lang'), 'fr');
  const SCREENSHOT_FR = SCREENSHOT.replace(/\.png$/, '-fr.png');
  await page.screenshot({ path: SCREENSHOT_FR, fullPage: true });
  await page.getByRole('link', { name: 'Historique complet de sirene' }).click();
  await page.waitForURL(`${URL_}/audit?instance=sirene`);
  await page.getByRole('heading', { name: 'Historique', exact: true }).waitFor();
  const frAudit = await page.locator('table.audit tbody tr').evaluateAll((trs) => trs.map((tr) => Array.from(tr.children).map((c) => c.textContent.trim())));
  for (const r of frAudit) assert.match(r[0], FR_DATE, JSON.stringify(r));
  assert.ok(frAudit.some((r) => r[4] === 'timeout_secs' && r[5] === '16 → 14'), JSON.stringify(frAudit));
  assert.ok(frAudit.some((r) => r[3] === 'Instance activée' && r[5] === 'Désactivée → Activée'), JSON.stringify(frAudit));
  assert.ok(frAudit.some((r) => r[4] === 'api_key' && r[3] === 'Champ modifié' && r[5] === 'modifié'), JSON.stringify(frAudit));
  assert.ok(frAudit.some((r) => r[4] === 'base_url' && r[5].startsWith('(par défaut) https://api.insee.fr')), JSON.stringify(frAudit));
  const headers = await page.locator('table.audit thead th').allTextContents();
  assert.deepEqual(headers, ['Date', 'Auteur', 'Instance', 'Action', 'Champ', 'Modification']);
  log(`the choice is remembered across pages; the history is in French with French dates (${frAudit[0][0]}); screenshot ${SCREENSHOT_FR}`);

  // A browser whose language is French gets French from the start.
  const french = await browser.newContext({ locale: 'fr-FR' });
  french.setDefaultTimeout(TIMEOUT);
  const fp = await french.newPage();
  await fp.goto(`${URL_}/instances`);
  assert.match(fp.url(), /\/login\?next=\/instances$/);
  assert.equal(await fp.getAttribute('html', 'lang'), 'fr');
  await fp.getByRole('heading', { name: 'Connexion' }).waitFor();
  await fp.getByLabel("Nom d'utilisateur").fill('admin');
  await fp.getByLabel('Mot de passe').fill(PASSWORD);
  await fp.getByRole('button', { name: 'Se connecter' }).click();
  await fp.waitForURL(`${URL_}/instances`);
  await fp.getByRole('heading', { name: 'Créer une instance' }).waitFor();
  assert.match(await fp.locator('table tbody tr').first().textContent(), /Activée/);
  await french.close();
  log('a browser set to French gets the sign-in page and the console in French');

  // Back to English with the switcher.
  await page.getByRole('navigation', { name: 'Langue' }).getByRole('link', { name: 'English' }).click();
  await page.waitForURL(`${URL_}/audit?instance=sirene&lang=en`);
  await page.getByRole('heading', { name: 'Audit history' }).waitFor();
  assert.equal(await page.getAttribute('html', 'lang'), 'en');
  log('the switcher brings English back');

  // ----- screenshot of the instance page -----
  await page.goto(`${URL_}/instances/sirene`);
  await page.screenshot({ path: SCREENSHOT, fullPage: true });
  log(`screenshot saved to ${SCREENSHOT}`);

  // ----- without JavaScript -----
  const plain = await browser.newContext({ javaScriptEnabled: false });
  plain.setDefaultTimeout(TIMEOUT);
  await plain.addCookies([{ ...session }]);
  const p2 = await plain.newPage();
  await p2.goto(`${URL_}/instances/sirene`);
  assert.equal(await p2.getByLabel('API base URL').inputValue(), SIRENE);
  assert.equal(await p2.locator('#state-api_key').textContent(), 'set');
  assert.equal(await p2.locator('#field-client_id').isVisible(), false);
  assert.ok((await p2.locator('#test-result table.steps tbody tr').count()) >= 2);
  await p2.getByLabel('Timeout (seconds)').fill('0');
  await p2.getByRole('button', { name: 'Save Timeout (seconds)', exact: true }).click();
  await p2.locator('#err-timeout_secs').getByText('0 is less than the minimum of 1').waitFor();
  assert.equal(await p2.getByLabel('Timeout (seconds)').inputValue(), '0');
  await p2.getByLabel('Timeout (seconds)').fill('17');
  await p2.getByRole('button', { name: 'Save Timeout (seconds)', exact: true }).click();
  await p2.waitForURL(/\?saved=timeout_secs/);
  assert.equal(await p2.getByLabel('Timeout (seconds)').inputValue(), '17');
  assert.equal(await p2.locator('#saved-timeout_secs').textContent(), 'Saved.');
  await plain.close();
  log('without JavaScript the page is readable and a field still saves (error shown, typed value kept)');

  // ----- sign out -----
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL(`${URL_}/login`);
  await page.goto(`${URL_}/instances/sirene`);
  assert.match(page.url(), /\/login/);
  log('signed out: the session no longer opens pages');

  assert.deepEqual(consoleErrors, [], 'script errors in the browser console');
  await context.close();
  console.log('console scenario passed');
} finally {
  await browser.close();
}
