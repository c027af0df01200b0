// deploy/kubernetes/*.yaml against the Kubernetes API schemas (the npm package
// kubernetes-models: JSON-schema validators generated from the Kubernetes
// OpenAPI spec, and @kubernetes-models/prometheus-operator for PodMonitor),
// then the facts the schemas cannot know: probes on /health and /ready, a grace
// period that covers preStop + --shutdown-timeout-s, ports that line up across
// the Deployment, Service and PodMonitor, flags that kr-serve accepts, and an
// autoscaler on krserve_num_requests_waiting that the adapter rule serves.
// The schemas have no additionalProperties: false (nor has the API's OpenAPI
// spec), so a misspelt optional field is not caught by them: the fields that
// matter are checked by name below.
//
// ctest: deploy_manifests (with grafana.test.mjs). Needs `npm ci` in tests/deploy
// (scripts/prepare-tests.sh); fails without it.
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const root = new URL('../../', import.meta.url).pathname;
const dir = path.join(root, 'deploy/kubernetes');

async function deps() {
  try {
    const YAML = (await import('yaml')).default;
    const models = {
      'apps/v1/Deployment': (await import('kubernetes-models/apps/v1/Deployment')).Deployment,
      'v1/Service': (await import('kubernetes-models/v1/Service')).Service,
      'v1/ConfigMap': (await import('kubernetes-models/v1/ConfigMap')).ConfigMap,
      'autoscaling/v2/HorizontalPodAutoscaler': (await import('kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler')).HorizontalPodAutoscaler,
      'monitoring.coreos.com/v1/PodMonitor': (await import('@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor')).PodMonitor,
    };
    return { YAML, models };
  } catch (e) {
    throw new Error(`tests/deploy/node_modules is missing or incomplete: run scripts/prepare-tests.sh (${e.message})`);
  }
}

function validate(models, doc, where) {
  const Model = models[`${doc.apiVersion}/${doc.kind}`];
  assert.ok(Model, `${where}: no schema for ${doc.apiVersion} ${doc.kind}`);
  new Model(doc).validate();  // throws with the schema errors
}

async function loadAll() {
  const { YAML, models } = await deps();
  const docs = {};
  for (const f of fs.readdirSync(dir).filter((f) => f.endsWith('.yaml')).sort()) {
    for (const d of YAML.parseAllDocuments(fs.readFileSync(path.join(dir, f), 'utf8'))) {
      assert.deepEqual(d.errors, [], `${f}: YAML errors`);
      const doc = d.toJS();
      if (!doc) continue;
      docs[doc.kind] = { doc, file: f };
    }
  }
  return { YAML, models, docs };
}

test('every manifest validates against its API schema', async () => {
  const { models, docs } = await loadAll();
  assert.deepEqual(Object.keys(docs).sort(), ['ConfigMap', 'Deployment', 'HorizontalPodAutoscaler', 'PodMonitor', 'Service']);
  for (const { doc, file } of Object.values(docs)) validate(models, doc, file);
});

test('the validator rejects broken manifests (it is not a no-op)', async () => {
  const { models, docs } = await loadAll();
  const broken = [
    (d) => { d.spec.replicas = 'two'; },
    (d) => { d.spec.template.spec.containers[0].ports[0].containerPort = 'http'; },
    (d) => { delete d.spec.template.spec.containers[0].name; },
    (d) => { d.spec.template.spec.containers[0].readinessProbe.httpGet.path = 5; },
    (d) => { d.spec.template.spec.terminationGracePeriodSeconds = '45s'; },
  ];
  for (const breakIt of broken) {
    const d = structuredClone(docs.Deployment.doc);
    breakIt(d);
    assert.throws(() => validate(models, d, 'broken'), undefined, breakIt.toString());
  }
  const pm = structuredClone(docs.PodMonitor.doc);
  pm.spec.podMetricsEndpoints = 'http';
  assert.throws(() => validate(models, pm, 'broken podmonitor'));
  const hpa = structuredClone(docs.HorizontalPodAutoscaler.doc);
  delete hpa.spec.maxReplicas;  // required
  assert.throws(() => validate(models, hpa, 'broken hpa'));
});

test('probes, shutdown timing, GPU, ports and flags line up', async () => {
  const { docs } = await loadAll();
  const dep = docs.Deployment.doc;
  const pod = dep.spec.template.spec;
  const c = pod.containers[0];
  const labels = dep.spec.template.metadata.labels;
  for (const [k, v] of Object.entries(dep.spec.selector.matchLabels)) assert.equal(labels[k], v);
  assert.equal(c.resources.limits['nvidia.com/gpu'], 1);
  assert.equal(c.livenessProbe.httpGet.path, '/health');
  assert.equal(c.startupProbe.httpGet.path, '/health');
  assert.equal(c.readinessProbe.httpGet.path, '/ready');
  const port = c.ports.find((p) => p.name === 'http');
  // Probes go to the metrics port, which stays open while the server drains
  // (the API port closes at SIGTERM): liveness sees /health 200, readiness /ready 503.
  const metricsPort = c.ports.find((p) => p.name === 'metrics');
  for (const probe of [c.livenessProbe, c.startupProbe, c.readinessProbe]) assert.equal(probe.httpGet.port, 'metrics');
  // The container listens where the port says.
  const arg = (flag) => c.args[c.args.indexOf(flag) + 1];
  assert.equal(c.args[0], 'serve');
  assert.equal(Number(arg('--port')), port.containerPort);
  assert.equal(Number(arg('--metrics-port')), metricsPort.containerPort);
  assert.equal(arg('--host'), '0.0.0.0');
  // SIGTERM comes after preStop; kr-serve then drains for up to --shutdown-timeout-s.
  const shutdown = Number(arg('--shutdown-timeout-s'));
  const preStop = c.lifecycle.preStop.sleep?.seconds ?? 0;
  assert.ok(shutdown > 0 && preStop > 0);
  assert.ok(pod.terminationGracePeriodSeconds >= preStop + shutdown,
    `terminationGracePeriodSeconds ${pod.terminationGracePeriodSeconds} < preStop ${preStop} + shutdown ${shutdown}`);
  assert.ok(pod.terminationGracePeriodSeconds <= preStop + shutdown + 30, 'grace period far beyond the shutdown timeout');
  // Service and PodMonitor reach the same named port on the same pods.
  const svc = docs.Service.doc;
  assert.deepEqual(svc.spec.selector, dep.spec.selector.matchLabels);
  assert.equal(svc.spec.ports[0].targetPort, 'http');
  const pm = docs.PodMonitor.doc;
  assert.deepEqual(pm.spec.selector.matchLabels, dep.spec.selector.matchLabels);
  assert.equal(pm.spec.podMetricsEndpoints[0].port, 'metrics');
  assert.equal(pm.spec.podMetricsEndpoints[0].path, '/metrics');
  // The flags are ones kr-serve knows: it parses them all before reaching --help.
  const bin = process.env.KR_SERVE_BIN || path.join(root, 'build/bin/kr-serve');
  assert.ok(fs.existsSync(bin), `kr-serve binary missing at ${bin}`);
  const r = spawnSync(bin, [...c.args, '--help'], { encoding: 'utf8', timeout: 10_000 });
  assert.equal(r.status, 0, `kr-serve ${c.args.join(' ')} --help: ${r.stderr}`);
});

test('the autoscaler scales the Deployment on the metric the adapter serves', async () => {
  const { YAML, docs } = await loadAll();
  const hpa = docs.HorizontalPodAutoscaler.doc;
  assert.equal(hpa.spec.scaleTargetRef.kind, 'Deployment');
  assert.equal(hpa.spec.scaleTargetRef.name, docs.Deployment.doc.metadata.name);
  const m = hpa.spec.metrics[0];
  assert.equal(m.type, 'Pods');
  assert.equal(m.pods.metric.name, 'krserve_num_requests_waiting');
  assert.ok(Number(m.pods.target.averageValue) > 0);
  assert.ok(hpa.spec.minReplicas >= 1 && hpa.spec.maxReplicas > hpa.spec.minReplicas);
  const rules = YAML.parse(docs.ConfigMap.doc.data['config.yaml']).rules;
  const rule = rules.find((x) => x.name.as === m.pods.metric.name);
  assert.ok(rule, 'no prometheus-adapter rule serves the HPA metric');
  assert.match(rule.seriesQuery, /^krserve_num_requests_waiting\{/);
  assert.deepEqual(rule.resources.overrides, { namespace: { resource: 'namespace' }, pod: { resource: 'pod' } });
  assert.match(rule.metricsQuery, /<<\.Series>>\{<<\.LabelMatchers>>\}/);
});
