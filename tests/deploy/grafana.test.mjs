// deploy/grafana/kr-serve-dashboard.json against what the server exports: it
// starts the real kr-serve (tiny model), scrapes /metrics, and checks that every
// krserve_* name in every query is a series it exports (histograms as
// _bucket/_sum/_count), or one of the prefix-cache counters that are still to
// come; that rate() is only taken of counters; and that the dashboard is well
// formed (unique panel ids, a Prometheus data source variable, every panel
// queried).
//
// ctest: deploy_manifests (with kubernetes.test.mjs).
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { startServer, stopServer, get } from '../integration/helpers.mjs';

const root = new URL('../../', import.meta.url).pathname;
const dashboard = JSON.parse(fs.readFileSync(`${root}deploy/grafana/kr-serve-dashboard.json`, 'utf8'));
// Counters of the prefix-cache work (vLLM's names under our prefix), not exported yet.
const COMING = { krserve_prefix_cache_hits_total: 'counter', krserve_prefix_cache_queries_total: 'counter' };

// name -> 'counter' | 'gauge' | 'histogram-part', from the exposition's # TYPE lines.
async function exportedSeries() {
  const s = await startServer();
  try {
    const text = (await get(s.port, '/metrics')).body;
    const types = {};
    for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
      if (m[2] === 'histogram') {
        for (const suffix of ['_bucket', '_sum', '_count']) types[m[1] + suffix] = 'histogram-part';
      } else {
        types[m[1]] = m[2];
      }
    }
    assert.ok(Object.keys(types).length > 20, `few series in /metrics:\n${text.slice(0, 500)}`);
    return types;
  } finally {
    await stopServer(s);
  }
}

function queries(d) {
  const out = [];
  for (const p of d.panels) for (const t of p.targets || []) out.push({ where: `panel "${p.title}"`, expr: t.expr });
  for (const v of d.templating.list) {
    if (v.type !== 'query') continue;
    out.push({ where: `variable ${v.name}`, expr: typeof v.query === 'string' ? v.query : v.query.query });
    out.push({ where: `variable ${v.name} (definition)`, expr: v.definition });
  }
  return out;
}

test('every query names series that kr-serve exports', async () => {
  const types = { ...(await exportedSeries()), ...COMING };
  const qs = queries(dashboard);
  assert.ok(qs.length > 20);
  const used = new Set();
  for (const { where, expr } of qs) {
    const names = expr.match(/\bkrserve_[a-zA-Z0-9_]+/g) || [];
    assert.ok(names.length > 0, `${where}: no krserve_ series in ${expr}`);
    for (const n of names) {
      assert.ok(n in types, `${where}: ${n} is not exported by kr-serve (${expr})`);
      used.add(n);
    }
    // rate()/increase() only make sense on counters (histogram parts are counters).
    for (const m of expr.matchAll(/\b(?:rate|irate|increase)\((krserve_[a-zA-Z0-9_]+)/g)) {
      assert.ok(types[m[1]] === 'counter' || types[m[1]] === 'histogram-part', `${where}: rate() of ${types[m[1]]} ${m[1]}`);
    }
    // histogram_quantile() needs buckets.
    if (expr.includes('histogram_quantile')) assert.match(expr, /_bucket\{/, `${where}: histogram_quantile without _bucket`);
  }
  // What the issue asks the dashboard to show.
  for (const n of ['krserve_generation_tokens_total', 'krserve_time_to_first_token_seconds_bucket', 'krserve_inter_token_latency_seconds_bucket',
    'krserve_num_requests_waiting', 'krserve_kv_cache_usage_perc', 'krserve_prefix_cache_hits_total', 'krserve_prefix_cache_queries_total',
    'krserve_scheduler_window_ms', 'krserve_auto_tune_enabled', 'krserve_auto_tune_ema_p99_ttft_ms']) {
    assert.ok(used.has(n), `the dashboard does not show ${n}`);
  }
});

test('the dashboard is well formed', () => {
  assert.equal(dashboard.uid, 'kr-serve');
  const ds = dashboard.templating.list.find((v) => v.type === 'datasource');
  assert.equal(ds.query, 'prometheus');
  const ids = dashboard.panels.map((p) => p.id);
  assert.equal(new Set(ids).size, ids.length, 'panel ids are unique');
  for (const p of dashboard.panels) {
    const g = p.gridPos;
    assert.ok(g.x >= 0 && g.w > 0 && g.x + g.w <= 24, `panel "${p.title}" fits the 24-column grid`);
    if (p.type === 'row') continue;
    assert.ok(p.targets.length > 0, `panel "${p.title}" has queries`);
    assert.equal(p.datasource.uid, `\${${ds.name}}`, `panel "${p.title}" uses the data source variable`);
    for (const t of p.targets) assert.match(t.expr, /model_name=~"\$model"/, `panel "${p.title}" filters by model: ${t.expr}`);
  }
  // Panels do not overlap.
  const cells = new Set();
  for (const p of dashboard.panels) {
    for (let y = p.gridPos.y; y < p.gridPos.y + p.gridPos.h; y++) {
      for (let x = p.gridPos.x; x < p.gridPos.x + p.gridPos.w; x++) {
        const k = `${x},${y}`;
        assert.ok(!cells.has(k), `panel "${p.title}" overlaps another at ${k}`);
        cells.add(k);
      }
    }
  }
});
