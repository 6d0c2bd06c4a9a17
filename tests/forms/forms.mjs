// How Passerelle's configuration schemas meet stock form tools: the ajv set-up that accepts
// the x- keywords in strict mode, the JSON Forms UI schema that renders secrets as password
// inputs, and the RJSF settings. Partners import these instead of copying them.
import Ajv from 'ajv';
import addFormats from 'ajv-formats';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const here = path.dirname(fileURLToPath(import.meta.url));
export const repo = path.resolve(here, '../..');
export const vocabulary = JSON.parse(
  fs.readFileSync(path.join(repo, 'schemas/passerelle-vocabulary.json'), 'utf8'),
);

/** Loads the vocabulary into an ajv 8 instance: its keywords, and itself as a meta-schema. */
export function addPasserelleVocabulary(ajv) {
  ajv.addMetaSchema(vocabulary);
  ajv.addVocabulary(
    Object.entries(vocabulary.properties).map(([keyword, metaSchema]) => ({ keyword, metaSchema })),
  );
  return ajv;
}

/** ajv 8 in strict mode, all errors, formats (uri), and the vocabulary. */
export function strictAjv() {
  const ajv = new Ajv({ strict: true, allErrors: true });
  addFormats(ajv);
  return addPasserelleVocabulary(ajv);
}

/** Whether a property is a secret (the host's rule: writeOnly or format password). */
export const isSecret = (prop) => prop.writeOnly === true || prop.format === 'password';

/** Labelled choices of a property: `oneOf` of `{const, title}`. */
export const choicesOf = (prop) =>
  Array.isArray(prop.oneOf) && prop.oneOf.every((c) => 'const' in c) ? prop.oneOf : null;

/** Property names in form order (x-order, then declaration order). */
export function orderedFields(schema) {
  return Object.entries(schema.properties)
    .map(([name, prop], index) => [prop['x-order'] ?? Number.MAX_SAFE_INTEGER, index, name])
    .sort((a, b) => a[0] - b[0] || a[1] - b[1])
    .map(([, , name]) => name);
}

/**
 * The JSON Forms UI schema of a configuration schema: one group per x-group, controls in
 * x-order, and `options.format: "password"` on secrets (JSON Forms ignores the schema's
 * `format: password`; its vanilla text cell reads the UI schema option).
 */
export function jsonFormsUiSchema(schema) {
  const groups = new Map();
  for (const name of orderedFields(schema)) {
    const prop = schema.properties[name];
    const group = prop['x-group'] ?? '';
    if (!groups.has(group)) groups.set(group, []);
    const control = { type: 'Control', scope: `#/properties/${name}` };
    if (isSecret(prop)) control.options = { format: 'password' };
    groups.get(group).push(control);
  }
  return {
    type: 'VerticalLayout',
    elements: [...groups].map(([label, elements]) =>
      label ? { type: 'Group', label, elements } : { type: 'VerticalLayout', elements },
    ),
  };
}

/**
 * RJSF settings: a choice without a default (Chorus Pro's `environment`) must stay empty;
 * RJSF's stock `constAsDefaults: "always"` would fill it with the first choice's `const`.
 */
export const rjsfDefaultFormStateBehavior = { constAsDefaults: 'skipOneOf' };

/** The fields an ajv error list names (missing, unknown, or the top-level field at fault). */
export function fieldsOfAjvErrors(errors) {
  const fields = new Set();
  for (const e of errors ?? []) {
    if (e.keyword === 'if') continue; // says "must match then": the `required` error names the field
    if (e.keyword === 'required' && e.instancePath === '') fields.add(e.params.missingProperty);
    else if (e.keyword === 'additionalProperties' && e.instancePath === '')
      fields.add(e.params.additionalProperty);
    else fields.add(e.instancePath.split('/')[1] ?? '');
  }
  return fields;
}

/** The same for RJSF's validator, whose errors carry `.field` properties. */
export function fieldsOfRjsfErrors(errors) {
  const fields = new Set();
  for (const e of errors ?? []) {
    if (e.name === 'if') continue;
    if (e.name === 'required') fields.add(e.params.missingProperty);
    else if (e.name === 'additionalProperties' && e.property === '')
      fields.add(e.params.additionalProperty);
    else fields.add(e.property.replace(/^\./, '').split(/[.[]/)[0]);
  }
  return fields;
}
