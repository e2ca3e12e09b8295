#!/usr/bin/env node
// Calling llm-router from Node.js: load the protos at run time, Route one prompt, then read a
// Complete stream (decision, text deltas, summary) and print everything as one JSON object.
//
//   npm ci --prefix clients/node
//   node clients/node/example.js --target 127.0.0.1:50051 --prompt "Write a haiku"
//   node clients/node/example.js --target dns:///llm-router-headless.ml.svc:50051 --token "$TOKEN"
//
// Exit status: 0 when both calls succeed, 2 when Route fails, 3 when Complete fails (the JSON
// then carries "complete_error" with the gRPC status code and detail).
'use strict';

const path = require('node:path');
const { parseArgs } = require('node:util');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const PROTO_ROOT = path.resolve(__dirname, '..', '..', 'protos');
const PROTO_FILE = 'llm_router/v1/router.proto';

function parseOptions(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      target: { type: 'string', default: '127.0.0.1:50051' },
      prompt: { type: 'string', default: 'Write a Python function that reverses a linked list.' },
      'task-type': { type: 'string', default: '' },
      tenant: { type: 'string', default: '' },
      token: { type: 'string' },
      tls: { type: 'boolean', default: false },
      'max-tokens': { type: 'string', default: '64' },
      'timeout-ms': { type: 'string', default: '30000' },
      'no-complete': { type: 'boolean', default: false },
      'protos': { type: 'string', default: PROTO_ROOT },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  return values;
}

function loadRouterService(protoRoot) {
  const definition = protoLoader.loadSync(PROTO_FILE, {
    includeDirs: [protoRoot],
    keepCase: true, // field names as in the proto: request_id, max_cost_usd ...
    enums: String, // enum values by name: "ROLE_USER", "STRATEGY_RULES" ...
    longs: Number,
    defaults: true,
    oneofs: true, // CompleteEvent.event says which of decision | delta | summary is set
  });
  return grpc.loadPackageDefinition(definition).llm_router.v1.Router;
}

function makeClient(Router, opts) {
  const credentials = opts.tls ? grpc.credentials.createSsl() : grpc.credentials.createInsecure();
  // round_robin spreads calls over every address a dns:/// target resolves to (headless Service);
  // UNAVAILABLE is retried while no response has arrived.
  const serviceConfig = {
    loadBalancingConfig: [{ round_robin: {} }],
    methodConfig: [{
      name: [{ service: 'llm_router.v1.Router' }],
      retryPolicy: {
        maxAttempts: 4,
        initialBackoff: '0.05s',
        maxBackoff: '1s',
        backoffMultiplier: 2,
        retryableStatusCodes: ['UNAVAILABLE'],
      },
    }],
  };
  return new Router(opts.target, credentials, {
    'grpc.service_config': JSON.stringify(serviceConfig),
    'grpc.keepalive_time_ms': 30000,
  });
}

function callOptions(opts) {
  return { deadline: new Date(Date.now() + Number(opts['timeout-ms'])) };
}

function metadataFor(opts) {
  const metadata = new grpc.Metadata();
  if (opts.token) metadata.set('authorization', `Bearer ${opts.token}`);
  return metadata;
}

function routeRequest(opts) {
  return {
    messages: [{ role: 'ROLE_USER', content: opts.prompt }],
    task_type: opts['task-type'],
    tenant: opts.tenant,
  };
}

function route(client, opts) {
  return new Promise((resolve, reject) => {
    client.Route(routeRequest(opts), metadataFor(opts), callOptions(opts), (err, decision) =>
      (err ? reject(err) : resolve(decision)));
  });
}

function complete(client, opts) {
  return new Promise((resolve, reject) => {
    const result = { decision: null, text: '', deltas: 0, summary: null };
    const request = { request: routeRequest(opts), max_tokens: Number(opts['max-tokens']) };
    const call = client.Complete(request, metadataFor(opts), callOptions(opts));
    call.on('data', (event) => {
      if (event.event === 'decision') result.decision = event.decision;
      else if (event.event === 'delta') { result.text += event.delta.text; result.deltas += 1; }
      else if (event.event === 'summary') result.summary = event.summary;
    });
    call.on('error', (err) => { err.partial = result; reject(err); });
    call.on('end', () => resolve(result));
  });
}

function statusOf(err) {
  const name = Object.keys(grpc.status).find((key) => grpc.status[key] === err.code);
  return { code: err.code, code_name: name || 'UNKNOWN', details: err.details || err.message };
}

async function main() {
  const opts = parseOptions(process.argv.slice(2));
  if (opts.help) {
    console.log('usage: example.js [--target HOST:PORT] [--prompt TEXT] [--task-type T] [--tenant T]\n'
      + '                  [--token TOKEN] [--tls] [--max-tokens N] [--timeout-ms MS] [--no-complete]');
    return 0;
  }
  const Router = loadRouterService(opts.protos);
  const client = makeClient(Router, opts);
  const output = { target: opts.target };
  let status = 0;
  try {
    output.route = await route(client, opts);
  } catch (err) {
    output.route_error = statusOf(err);
    status = 2;
  }
  if (status === 0 && !opts['no-complete']) {
    try {
      output.complete = await complete(client, opts);
    } catch (err) {
      output.complete_error = statusOf(err);
      output.complete_partial = err.partial;
      status = 3;
    }
  }
  client.close();
  process.stdout.write(`${JSON.stringify(output, null, 2)}\n`);
  return status;
}

main().then((code) => { process.exitCode = code; }, (err) => {
  process.stderr.write(`example.js: ${err.stack || err}\n`);
  process.exitCode = 1;
});
