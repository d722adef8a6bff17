// Read a BPMN file with bpmn-moddle (as bpmn-js and Camunda Modeler do) and write it back.
// usage: node moddle_roundtrip.mjs IN OUT [camunda7|camunda8]
// With a Camunda flavour, Camunda's moddle extension for it is loaded, as Camunda Modeler does
// for a diagram of that platform (the two cannot be loaded together: both define
// modelerTemplate); without, unknown extension elements are kept as generic elements.
// Prints JSON: {"root": "bpmn:Definitions", "warnings": [...], "types": {"camunda:Property": 9,
// ...}} (how many elements of each extension type were read as typed elements, not generic
// ones); exit 1 if reading failed.
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import BpmnModdle from 'bpmn-moddle';

const require = createRequire(import.meta.url);
const EXTENSIONS = {
  camunda7: { camunda: 'camunda-bpmn-moddle/resources/camunda.json' },
  camunda8: { zeebe: 'zeebe-bpmn-moddle/resources/zeebe.json' },
};

const [input, output, flavour] = process.argv.slice(2);
const packages = Object.fromEntries(
  Object.entries(EXTENSIONS[flavour] || {}).map(([prefix, path]) => [prefix, require(path)]));
const moddle = new BpmnModdle(packages);
try {
  const { rootElement, warnings } = await moddle.fromXML(readFileSync(input, 'utf8'));
  const { xml } = await moddle.toXML(rootElement, { format: true });
  writeFileSync(output, xml);
  console.log(JSON.stringify({
    root: rootElement.$type,
    warnings: warnings.map((w) => w.message),
    types: extensionTypes(rootElement),
  }));
} catch (err) {
  console.log(JSON.stringify({ error: String(err && err.message || err) }));
  process.exit(1);
}

function extensionTypes(root) {
  const counts = {};
  const seen = new Set();
  const visit = (value) => {
    if (!value || typeof value !== 'object' || seen.has(value)) return;
    seen.add(value);
    if (Array.isArray(value)) { value.forEach(visit); return; }
    const type = value.$type;
    if (typeof type === 'string' && !type.startsWith('bpmn') && !type.startsWith('dc:')
        && !type.startsWith('di:')) {
      counts[type] = (counts[type] || 0) + 1;
    }
    for (const key of Object.keys(value)) {
      if (key !== '$parent' && key !== '$descriptor' && key !== '$model') visit(value[key]);
    }
  };
  visit(root);
  return counts;
}
