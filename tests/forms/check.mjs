#!/usr/bin/env node
// Conformance of configuration schemas with stock form tools (issue 15).
//
//   node tests/forms/check.mjs                       every committed schema (schemas/*.schema.json
//                                                    and schemas/<lang>/*.schema.json)
//   node tests/forms/check.mjs my-plugin.schema.json a partner's schema; `-` reads stdin, so
//   passerelle schema my-plugin | node tests/forms/check.mjs -
//   node tests/forms/check.mjs --host target/debug/passerelle --plugin-dir target/debug
//                                                    also compares ajv's verdicts on
//                                                    tests/forms/corpus/<id>/*.json with the host's
//                                                    (`passerelle config check --json`)
//
// Per schema: ajv 8 in strict mode compiles it with the published vocabulary, and it is valid
// against the vocabulary's meta-schema; RJSF 6 (+ validator-ajv8) and JSON Forms 3 (vanilla
// renderers) render it (server-side, read back with jsdom) with one control per property,
// secrets as password inputs, choices as selects showing their titles, defaults shown. Per
// corpus document: `valid-*` files are valid and `invalid-*` files are not, for ajv, RJSF's
// validator and the host alike, and all three name the same fields.
import React from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import Form from '@rjsf/core';
import rjsfValidator from '@rjsf/validator-ajv8';
import { JsonForms } from '@jsonforms/react';
import { vanillaCells, vanillaRenderers } from '@jsonforms/vanilla-renderers';
import { createAjv } from '@jsonforms/core';
import { JSDOM } from 'jsdom';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  repo, here, vocabulary, strictAjv, isSecret, choicesOf, jsonFormsUiSchema,
  rjsfDefaultFormStateBehavior, fieldsOfAjvErrors, fieldsOfRjsfErrors,
} from './forms.mjs';

const started = Date.now();
const args = process.argv.slice(2);
const option = (name) => {
  const i = args.indexOf(name);
  if (i < 0) return undefined;
  const [, value] = args.splice(i, 2);
  if (value === undefined) fail(`${name} needs a value`);
  return value;
};
const host = option('--host');
const pluginDir = option('--plugin-dir');
const problems = [];
const problem = (where, what) => problems.push(`${where}: ${what}`);
let controls = 0;
const corpusCounts = {};

function fail(message) {
  console.error(`forms check: ${message}`);
  process.exit(2);
}

/** Schemas to check: [label, id, schema]. */
function schemas() {
  const files = [];
  if (args.length === 0) {
    const dir = path.join(repo, 'schemas');
    for (const entry of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      if (entry.isFile() && entry.name.endsWith('.schema.json')) files.push(path.join(dir, entry.name));
      if (entry.isDirectory()) {
        for (const f of fs.readdirSync(path.join(dir, entry.name)).sort())
          if (f.endsWith('.schema.json')) files.push(path.join(dir, entry.name, f));
      }
    }
    if (files.length === 0) fail(`no schema found in ${dir}`);
  } else files.push(...args);
  return files.map((file) => {
    const text = file === '-' ? fs.readFileSync(0, 'utf8') : fs.readFileSync(file, 'utf8');
    let schema;
    try {
      schema = JSON.parse(text);
    } catch (e) {
      fail(`${file} is not JSON (${e.message}); give the output of \`passerelle schema <id>\``);
    }
    const id = file === '-' ? 'stdin' : path.basename(file, '.schema.json');
    return [file === '-' ? 'stdin' : path.relative(process.cwd(), file), id, schema];
  });
}

function checkStrict(label, schema) {
  const ajv = strictAjv();
  if (!ajv.validate(vocabulary.$id, schema))
    problem(label, `not valid against the vocabulary meta-schema: ${ajv.errorsText()}`);
  try {
    ajv.compile(schema);
  } catch (e) {
    problem(label, `ajv strict mode refuses it: ${e.message}`);
  }
}

const dom = (markup) => new JSDOM(markup).window.document;
const display = (value) => (typeof value === 'string' ? value : JSON.stringify(value));

/** Checks one rendered field: `input` is its control, `name` its property. */
function checkControl(where, prop, input, defaultValue, optionText) {
  controls += 1;
  const choices = choicesOf(prop);
  if (isSecret(prop)) {
    if (input?.tagName !== 'INPUT' || input.type !== 'password') problem(where, 'a secret is not a password input');
    return;
  }
  if (choices) {
    if (input?.tagName !== 'SELECT') return problem(where, `a choice is not a select but ${input?.outerHTML.slice(0, 80)}`);
    const shown = [...input.options].map(optionText);
    for (const c of choices)
      if (!shown.includes(c.title)) problem(where, `the select does not show the title ${JSON.stringify(c.title)} (shows ${JSON.stringify(shown)})`);
    const selected = [...input.options].filter((o) => o.selected && o.value !== '').map(optionText);
    const expected = defaultValue === undefined ? [] : [choices.find((c) => c.const === defaultValue)?.title];
    if (JSON.stringify(selected) !== JSON.stringify(expected))
      problem(where, `selected ${JSON.stringify(selected)}, expected ${JSON.stringify(expected)} (the default)`);
    return;
  }
  if (prop.type === 'array') return; // items checked by the caller
  if (input?.tagName !== 'INPUT') return problem(where, `no input (${input?.outerHTML.slice(0, 80)})`);
  if (prop.type === 'boolean') {
    if (input.type !== 'checkbox') problem(where, `a switch is a ${input.type} input, not a checkbox`);
    if (defaultValue !== undefined && input.checked !== defaultValue) problem(where, `the default ${defaultValue} is not shown`);
  } else if (defaultValue !== undefined && input.value !== String(defaultValue)) {
    problem(where, `shows ${JSON.stringify(input.value)}, not the default ${display(defaultValue)}`);
  }
}

function checkArrayItems(where, prop, inputs, defaultValue) {
  const values = inputs.map((i) => i.value);
  if (JSON.stringify(values) !== JSON.stringify((defaultValue ?? []).map(String)))
    problem(where, `list shows ${JSON.stringify(values)}, not the default ${display(defaultValue ?? [])}`);
}

function checkRjsf(label, schema) {
  let markup;
  try {
    markup = renderToStaticMarkup(React.createElement(Form, {
      schema, validator: rjsfValidator,
      experimental_defaultFormStateBehavior: rjsfDefaultFormStateBehavior,
    }));
  } catch (e) {
    return problem(`${label} (RJSF)`, `does not render: ${e.message}`);
  }
  if (/Unsupported field schema/i.test(markup)) problem(`${label} (RJSF)`, 'shows "Unsupported field schema"');
  const doc = dom(markup);
  for (const [name, prop] of Object.entries(schema.properties)) {
    const where = `${label} (RJSF) field ${name}`;
    const found = doc.querySelectorAll(`[id="root_${name}"]`);
    if (found.length !== 1) { problem(where, `${found.length} controls, expected 1`); continue; }
    checkControl(where, prop, found[0], prop.default, (o) => o.textContent);
    if (prop.type === 'array')
      checkArrayItems(where, prop, [...doc.querySelectorAll(`input[id^="root_${name}_"]`)], prop.default);
  }
}

function checkJsonForms(label, schema) {
  let markup;
  try {
    markup = renderToStaticMarkup(React.createElement(JsonForms, {
      schema, uischema: jsonFormsUiSchema(schema), data: {},
      renderers: vanillaRenderers, cells: vanillaCells,
      // JSON Forms shows defaults when its ajv fills them in (its documented way).
      ajv: createAjv({ useDefaults: true }),
    }));
  } catch (e) {
    return problem(`${label} (JSON Forms)`, `does not render: ${e.message}`);
  }
  if (/No applicable renderer/i.test(markup)) problem(`${label} (JSON Forms)`, 'shows "No applicable renderer found"');
  const doc = dom(markup);
  for (const [name, prop] of Object.entries(schema.properties)) {
    const where = `${label} (JSON Forms) field ${name}`;
    const found = [...doc.getElementsByClassName(`root_properties_${name}`)];
    if (found.length !== 1) { problem(where, `${found.length} controls, expected 1`); continue; }
    if (prop.type === 'array') {
      controls += 1;
      checkArrayItems(where, prop, [...found[0].querySelectorAll('tbody input')], prop.default);
      continue;
    }
    // Ids are numbered per process (`#/properties/x2` in the next form): look inside the control.
    const input = found[0].querySelector('input, select, textarea');
    checkControl(where, prop, input, prop.default, (o) => o.label);
  }
}

const scratch = [];
process.on('exit', () => scratch.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));
const tempDir = (prefix) => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  scratch.push(d);
  return d;
};

/** The host's verdicts on documents, from the real binary, one run per plugin. */
async function hostVerdicts(id, files) {
  const data = tempDir('forms-data-');
  // Load only this plugin when its library is found: loading every plugin costs seconds.
  let dir = pluginDir;
  const lib = path.join(pluginDir, `libpasserelle_${id.replaceAll('-', '_')}.so`);
  if (fs.existsSync(lib)) {
    dir = tempDir('forms-plugins-');
    fs.symlinkSync(path.resolve(lib), path.join(dir, path.basename(lib)));
  }
  const out = await new Promise((resolve) => {
    execFile(host, ['--plugin-dir', dir, '--plugin-policy', 'allow-unsigned', '--data-dir', data,
      'config', 'check', id, ...files, '--json'], { encoding: 'utf8', timeout: 120_000 }, (e, stdout, stderr) => {
      if (e && e.code !== 3) fail(`${host} config check ${id} failed (${e.code ?? e.signal}): ${stderr}`);
      resolve(stdout);
    });
  });
  return JSON.parse(out);
}

function corpusFiles(id) {
  const dir = path.join(here, 'corpus', id);
  if (!fs.existsSync(dir)) {
    problem(`corpus ${id}`, `no documents in ${path.relative(repo, dir)}`);
    return [];
  }
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.json')).sort().map((f) => path.join(dir, f));
  corpusCounts[id] = files.length;
  return files;
}

function checkCorpus(id, variants, files, verdicts) {
  for (const [i, file] of files.entries()) {
    const name = `corpus ${id}/${path.basename(file)}`;
    const doc = JSON.parse(fs.readFileSync(file, 'utf8'));
    const hostFields = [...new Set(verdicts[i].errors.map((e) => e.field))].sort();
    const expectValid = path.basename(file).startsWith('valid-');
    if (verdicts[i].valid !== expectValid)
      problem(name, `the host says ${verdicts[i].valid ? 'valid' : `invalid (${hostFields})`}, the file name says otherwise`);
    for (const [label, schema, validate] of variants) {
      const ok = validate(structuredClone(doc));
      const ajvFields = [...fieldsOfAjvErrors(validate.errors)].sort();
      if (ok !== verdicts[i].valid || JSON.stringify(ajvFields) !== JSON.stringify(hostFields))
        problem(name, `ajv with ${label} says ${ok ? 'valid' : 'invalid'} [${ajvFields}], the host ${verdicts[i].valid ? 'valid' : 'invalid'} [${hostFields}]: ${JSON.stringify(validate.errors)}`);
      const rjsf = rjsfValidator.validateFormData(structuredClone(doc), schema);
      const rjsfFields = [...fieldsOfRjsfErrors(rjsf.errors)].sort();
      if ((rjsf.errors.length === 0) !== verdicts[i].valid || JSON.stringify(rjsfFields) !== JSON.stringify(hostFields))
        problem(name, `RJSF's validator with ${label} names [${rjsfFields}], the host [${hostFields}]`);
    }
  }
}

const all = schemas();
const configSchemas = all.filter(([label, , schema]) => {
  const ok = schema?.type === 'object' && typeof schema.properties === 'object';
  if (!ok) problem(label, 'not a configuration schema (an object schema with properties)');
  return ok;
});
// The host runs start first and together: their time goes to loading the plugin, not to CPU,
// and overlaps the rendering below.
let runs = [];
if (host) {
  if (!pluginDir) fail('--host needs --plugin-dir (the folder of the plugin libraries)');
  const ids = [...new Set(configSchemas.map(([, id]) => id))];
  runs = ids.map((id) => {
    const files = corpusFiles(id);
    return hostVerdicts(id, files).then((verdicts) => [id, files, verdicts]);
  });
}
for (const [label, , schema] of configSchemas) {
  checkStrict(label, schema);
  checkRjsf(label, schema);
  checkJsonForms(label, schema);
}
for (const [id, files, verdicts] of await Promise.all(runs)) {
  const variants = [];
  for (const [label, other, schema] of configSchemas) {
    if (other !== id) continue;
    try {
      variants.push([label, schema, strictAjv().compile(schema)]);
    } catch {
      // already reported by checkStrict
    }
  }
  checkCorpus(id, variants, files, verdicts);
}

const seconds = ((Date.now() - started) / 1000).toFixed(1);
const corpus = Object.entries(corpusCounts).map(([id, n]) => `${id} ${n}`).join(', ');
console.log(`forms check: ${all.length} schema(s), ${controls} controls checked${corpus ? `, corpus documents: ${corpus}` : ''}, ${seconds} s`);
if (problems.length) {
  console.error(`${problems.length} problem(s):\n  ${problems.join('\n  ')}`);
  process.exit(1);
}
console.log('forms check: all conform');
