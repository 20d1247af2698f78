// TokenGateway dashboard: every number comes from the admin API (/admin/usage*, /admin/teams*), so it equals the API.
'use strict';

(() => {
  const RANGES = {
    '24h': { hours: 24, bucket: 'hour' },
    '7d': { hours: 24 * 7, bucket: 'day' },
    '30d': { hours: 24 * 30, bucket: 'day' },
    all: { hours: null, bucket: 'day' },
  };
  const TOP_SERIES = 6;
  const HOUR = 3600e3, DAY = 24 * HOUR;
  const { fmtInt, fmtUsd, fmtPct, $, api } = window.TokenGatewayDashboard; // common.js

  function query(base, extra) {
    const params = new URLSearchParams(base);
    for (const [k, v] of Object.entries(extra || {})) params.set(k, v);
    return params.toString();
  }

  function setOutput(id, value, text) {
    const node = document.getElementById(id);
    node.dataset.value = String(value);
    node.textContent = text;
  }

  function bucketsFor(range, bucket, keys) {
    const step = bucket === 'hour' ? HOUR : DAY;
    const now = Date.now();
    const times = keys.map((k) => Date.parse(k)).filter(Number.isFinite);
    const start = range.hours ? now - range.hours * HOUR : (times.length ? Math.min(...times) : now);
    const out = [];
    for (let t = Math.floor(start / step) * step; t <= now; t += step) out.push(t);
    return out;
  }

  const tokensOf = (g) => (g.inputTokens || 0) + (g.outputTokens || 0);

  async function seriesBy(base, dimension, filterName, labels, bucket) {
    const grouped = await api('/admin/usage?' + query(base, { groupBy: dimension }));
    const top = grouped.groups.slice().sort((a, b) => b.costUsd - a.costUsd || tokensOf(b) - tokensOf(a)).slice(0, TOP_SERIES);
    return Promise.all(top.map(async (g) => {
      const over = await api('/admin/usage?' + query(base, { groupBy: bucket, [filterName]: g.key }));
      return { name: labels.get(g.key) || g.key || '(none)', groups: over.groups };
    }));
  }

  function renderSeries(containerId, series, buckets, value, format, label) {
    TgCharts.line(document.getElementById(containerId),
      series.map((s) => ({ name: s.name, points: s.groups.map((g) => ({ t: Date.parse(g.key), v: value(g) })) })),
      buckets, { format, label });
  }

  function rows(tbodySelector, items, cells) {
    const tbody = $(tbodySelector);
    tbody.replaceChildren(...items.map((item) => {
      const tr = document.createElement('tr');
      for (const cell of cells(item)) {
        const td = document.createElement('td');
        if (cell instanceof Node) td.appendChild(cell); else td.textContent = cell;
        if (typeof cell === 'string' && /^[$\d–∞]/.test(cell)) td.className = 'num';
        tr.appendChild(td);
      }
      return tr;
    }));
  }

  function burnDown(budget, now) {
    const start = Date.parse(budget.periodStart), reset = Date.parse(budget.resetsAt);
    const elapsedDays = Math.max(now - start, HOUR) / DAY;
    const usd = budget.budgetUsd != null || budget.budgetTokens == null; // USD unless only a token budget is set
    const spent = usd ? budget.spentUsd : budget.spentTokens;
    const limit = usd ? budget.budgetUsd : budget.budgetTokens;
    const remaining = usd ? budget.remainingUsd : budget.remainingTokens;
    const rate = spent / elapsedDays;
    const daysLeft = limit == null ? null : rate > 0 ? remaining / rate : Infinity;
    return { usd, spent, limit, rate, daysLeft, used: limit ? spent / limit : null, runsOut: daysLeft != null && now + daysLeft * DAY < reset };
  }

  async function renderBudgets(teams) {
    const now = Date.now();
    const budgets = await Promise.all(teams.map(async (t) => ({ team: t, budget: await api(`/admin/teams/${encodeURIComponent(t.id)}/budget`) })));
    rows('#budgets tbody', budgets, ({ team, budget }) => {
      const b = burnDown(budget, now);
      const fmt = b.usd ? fmtUsd : fmtInt;
      const bar = document.createElement('span');
      bar.className = 'bar' + (b.used != null && b.used >= 1 ? ' over' : '');
      const fill = document.createElement('span');
      fill.style.width = `${Math.min(100, (b.used || 0) * 100)}%`;
      bar.appendChild(fill);
      const used = document.createElement('span');
      used.append(bar, b.used == null ? 'no budget' : fmtPct(b.used));
      const days = b.daysLeft == null ? '–' : b.daysLeft === Infinity ? '∞' : b.daysLeft.toFixed(1) + (b.runsOut ? ' (before reset)' : '');
      return [team.name, budget.period, fmt(b.spent), b.limit == null ? '–' : fmt(b.limit), used, fmt(b.rate), days, budget.resetsAt.replace('T', ' ').slice(0, 16)];
    });
  }

  async function load() {
    const rangeName = $('#range').value;
    const range = RANGES[rangeName];
    const base = {};
    if (range.hours) base.from = new Date(Date.now() - range.hours * HOUR).toISOString();
    const bucket = range.bucket;
    $('#status').textContent = 'Loading…';
    document.body.dataset.ready = 'false';

    const [totals, rejected, failed, overall, teams, stages, recent, keys, cache] = await Promise.all([
      api('/admin/usage?' + query(base)),
      api('/admin/usage?' + query(base, { status: 'rejected', groupBy: bucket })),
      api('/admin/usage?' + query(base, { status: 'upstream_error', groupBy: bucket })),
      api('/admin/usage?' + query(base, { groupBy: bucket })),
      api('/admin/teams?limit=1000'),
      api('/admin/usage/stages?' + query(base)),
      api('/admin/usage/recent?' + query(base, { limit: '50' })),
      api('/admin/usage?' + query(base, { groupBy: 'key' })),
      api('/admin/usage/cache?' + query(base)),
    ]);

    const t = totals.totals;
    $('#totals').dataset.query = query(base);
    setOutput('total-requests', t.requests, fmtInt(t.requests));
    setOutput('total-cost', t.costUsd, fmtUsd(t.costUsd));
    setOutput('total-input-received', t.inputTokensReceived, fmtInt(t.inputTokensReceived));
    setOutput('total-input-sent', t.inputTokensSent, fmtInt(t.inputTokensSent));
    setOutput('total-input', t.inputTokens, fmtInt(t.inputTokens));
    setOutput('total-output', t.outputTokens, fmtInt(t.outputTokens));
    setOutput('total-saved', t.tokensSaved, fmtInt(t.tokensSaved));
    const savings = t.inputTokensReceived > 0 ? t.tokensSaved / t.inputTokensReceived : NaN;
    setOutput('savings-ratio', savings, fmtPct(savings));
    const errorRate = t.requests > 0 ? failed.totals.requests / t.requests : NaN;
    const rejectionRate = t.requests > 0 ? rejected.totals.requests / t.requests : NaN;
    setOutput('error-rate', errorRate, fmtPct(errorRate));
    setOutput('rejection-rate', rejectionRate, fmtPct(rejectionRate));
    // Response cache: hits ÷ answered requests (ok + hits), and what the hits would have cost at catalogue prices.
    setOutput('cache-hits', cache.hits, fmtInt(cache.hits));
    const hitShare = cache.hitShare == null ? NaN : cache.hitShare;
    setOutput('cache-hit-share', hitShare, fmtPct(hitShare));
    setOutput('cache-saved', cache.savedUsd, fmtUsd(cache.savedUsd));
    setOutput('cache-tokens', cache.tokensSaved, fmtInt(cache.tokensSaved));

    const teamNames = new Map(teams.data.map((x) => [x.id, x.name]));
    const buckets = bucketsFor(range, bucket, overall.groups.map((g) => g.key));
    const [byTeam, byModel] = await Promise.all([
      seriesBy(base, 'team', 'teamId', teamNames, bucket),
      seriesBy(base, 'model', 'model', new Map(), bucket),
    ]);
    renderSeries('chart-cost-team', byTeam, buckets, (g) => g.costUsd, fmtUsd, 'Spend by team');
    renderSeries('chart-tokens-team', byTeam, buckets, tokensOf, fmtInt, 'Tokens by team');
    renderSeries('chart-cost-model', byModel, buckets, (g) => g.costUsd, fmtUsd, 'Spend by model');
    renderSeries('chart-tokens-model', byModel, buckets, tokensOf, fmtInt, 'Tokens by model');
    TgCharts.bars(document.getElementById('chart-stages'),
      stages.stages.filter((s) => s.tokensSaved > 0).map((s) => ({ name: s.stage, v: s.tokensSaved })),
      { format: fmtInt, emptyText: 'No tokens saved in this range' });

    const requestsAt = new Map(overall.groups.map((g) => [g.key, g.requests]));
    const share = (groups) => groups.filter((g) => requestsAt.get(g.key)).map((g) => ({ t: Date.parse(g.key), v: g.requests / requestsAt.get(g.key) }));
    TgCharts.line(document.getElementById('chart-errors'),
      [{ name: 'upstream errors', points: share(failed.groups) }, { name: 'rejections', points: share(rejected.groups) }],
      buckets, { format: fmtPct, label: 'Error and rejection rates' });

    const topKeys = keys.groups.slice().sort((a, b) => b.costUsd - a.costUsd).slice(0, 10);
    rows('#top-keys tbody', topKeys, (g) => [g.key || '(none)', fmtInt(g.requests), fmtInt(g.inputTokens), fmtInt(g.outputTokens), fmtUsd(g.costUsd), fmtInt(g.tokensSaved)]);
    rows('#recent tbody', recent.data, (e) => {
      const status = document.createElement('span');
      status.className = 'status-' + e.status;
      status.textContent = e.errorCode ? `${e.status} (${e.errorCode})` : e.status;
      return [e.timestamp.replace('T', ' ').slice(0, 19), teamNames.get(e.teamId) || e.teamId || '–', e.keyId || '–', e.model || '–', status,
        `${fmtInt(e.inputTokensReceived)} / ${fmtInt(e.inputTokensSent)} / ${fmtInt(e.inputTokens)}`, fmtInt(e.outputTokens), fmtInt(e.tokensSaved),
        fmtUsd(e.costUsd), fmtInt(e.latencyMs)];
    });

    await renderBudgets(teams.data);
    $('#status').textContent = 'Updated ' + new Date().toISOString().slice(11, 19) + ' UTC';
    document.body.dataset.ready = 'true';
  }

  function refresh() {
    load().catch((error) => {
      $('#status').textContent = 'Error: ' + error.message;
      document.body.dataset.ready = 'error';
    });
  }

  document.addEventListener('DOMContentLoaded', () => {
    $('#range').addEventListener('change', refresh);
    refresh();
    setInterval(refresh, 60_000);
  });
})();
