// The npm bpmn-engine side of bench/bpmn_engine.py: the same map, the same round-robin walk.
//
//   node bench/node/bpmn_engine_steps.mjs MAP.bpmn INSTANCES
//
// Every step is an in-memory persistence round trip, as an application persisting each step
// would do it: recover the instance from its saved state (JSON text), resume it, signal the
// waiting user task, take getState() and serialize it back to JSON text. The map is parsed
// once and handed to every engine as its source context, and the state is stored without
// the source (as nextmove stores state without the spec). Nothing is written to disk.
// Prints one JSON object: steps, seconds (timed steps only), state bytes, and a check that
// every instance completed.
import { readFileSync } from 'node:fs';
import { EventEmitter } from 'node:events';
import { Engine } from 'bpmn-engine';
import BpmnModdle from 'bpmn-moddle';
import * as elements from 'bpmn-elements';
import serializer, { TypeResolver } from 'moddle-context-serializer';

const [mapPath, instancesArg] = process.argv.slice(2);
const instances = Number(instancesArg || 200);
const source = readFileSync(mapPath, 'utf8');
const moddle = await new BpmnModdle().fromXML(source);
const sourceContext = serializer(moddle, TypeResolver(elements));
const silent = () => ({ debug() {}, error() {}, warn() {} });

function userTasks() {
  return sourceContext.getActivities().filter((a) => a.type === 'bpmn:UserTask').map((a) => a.id);
}

function stateText(state) {
  for (const definition of state.definitions) delete definition.source;
  return JSON.stringify(state);
}

async function startOne() {
  const engine = new Engine({ name: 'bench', sourceContext, Logger: silent });
  const execution = await engine.execute({ listener: new EventEmitter() });
  return stateText(await execution.getState());
}

async function step(text, taskId) {
  const engine = new Engine({ name: 'bench', sourceContext, Logger: silent });
  engine.recover(JSON.parse(text));
  const execution = await engine.resume({ listener: new EventEmitter() });
  const waiting = execution.getPostponed().map((api) => api.id);
  if (!waiting.includes(taskId)) throw new Error(`not waiting at ${taskId}: ${waiting}`);
  execution.signal({ id: taskId });
  const finished = engine.state === 'idle' && execution.getPostponed().length === 0;
  return { text: stateText(await execution.getState()), done: finished };
}

const steps = userTasks();
// Warm-up (untimed): walk a few instances through, so V8 has compiled the hot paths.
for (let i = 0; i < Math.min(instances, 20); i++) {
  let text = await startOne();
  for (const taskId of steps) text = (await step(text, taskId)).text;
}
const docs = [];
for (let i = 0; i < instances; i++) docs.push(await startOne());
let last = [];
const began = process.hrtime.bigint();
for (const taskId of steps) {
  last = [];
  for (let i = 0; i < docs.length; i++) {
    const { text, done } = await step(docs[i], taskId);
    docs[i] = text;
    last.push(done);
  }
}
const seconds = Number(process.hrtime.bigint() - began) / 1e9;
const completed = last.filter(Boolean).length;
console.log(JSON.stringify({
  engine: 'bpmn-engine',
  version: JSON.parse(readFileSync(new URL('./node_modules/bpmn-engine/package.json', import.meta.url))).version,
  node: process.version,
  instances,
  user_tasks: steps.length,
  steps: instances * steps.length,
  seconds,
  state_bytes_last: docs[0].length,
  completed,
}));
