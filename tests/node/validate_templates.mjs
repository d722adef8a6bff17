// Validate element-template files with Camunda's own validator (what Camunda Modeler runs).
// usage: node validate_templates.mjs camunda7|camunda8 FILE
// Prints JSON: {"valid": true|false, "errors": [[...messages of template 1], ...]}.
import { readFileSync } from 'node:fs';
import { validateAll, validateAllZeebe } from '@bpmn-io/element-templates-validator';

const [platform, file] = process.argv.slice(2);
const templates = JSON.parse(readFileSync(file, 'utf8'));
const result = (platform === 'camunda8' ? validateAllZeebe : validateAll)(templates);
console.log(JSON.stringify({
  valid: result.valid,
  errors: result.results.map((r) => (r.errors || []).map((e) => e.message)),
}));
