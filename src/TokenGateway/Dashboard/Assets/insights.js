// TokenGateway insights: every figure comes from GET /admin/teams/{id}/insights (docs/insights.md).
'use strict';

(() => {
  const { fmtInt, fmtUsd, fmtPct, $, api } = window.TokenGatewayDashboard; // common.js

  function setOutput(id, value, text) {
    const node = document.getElementById(id);
    node.dataset.value = String(value);
    node.textContent = text;
  }

  function cell(content, className) {
    const td = document.createElement('td');
    if (content instanceof Node) td.appendChild(content); else td.textContent = content;
    if (className) td.className = className;
    return td;
  }

  function recommendationRow(item, index) {
    const tr = document.createElement('tr');
    tr.dataset.id = item.id;
    tr.dataset.usd = String(item.estimatedUsdPerMonth);
    const what = document.createElement('div');
    const title = document.createElement('strong');
    title.textContent = item.title;
    const change = document.createElement('p');
    change.className = 'change';
    change.textContent = item.change;
    what.append(title, change);
    const fragment = document.createElement('pre');
    fragment.className = 'policy';
    fragment.textContent = JSON.stringify(item.policy, null, 2);
    tr.append(
      cell(String(index + 1)),
      cell(what, 'wrap'),
      cell(fmtUsd(item.estimatedUsdPerMonth), 'num usd'),
      cell(fmtPct(item.shareOfSpend), 'num'),
      cell(item.reservedUsdPerMonth == null ? '–' : fmtUsd(item.reservedUsdPerMonth), 'num'),
      cell(fmtInt(item.samples), 'num'),
      cell(fragment));
    return tr;
  }

  async function load() {
    const teamId = $('#team').value;
    if (!teamId) {
      $('#status').textContent = 'No team yet.';
      document.body.dataset.ready = 'true';
      return;
    }

    $('#status').textContent = 'Loading…';
    document.body.dataset.ready = 'false';
    const report = await api(`/admin/teams/${encodeURIComponent(teamId)}/insights`);
    const w = report.window;
    setOutput('window-spend', report.volume.spendUsd, fmtUsd(report.volume.spendUsd));
    setOutput('window-days', w.days, w.days >= 1 ? `${w.days.toFixed(2)} days` : `${(w.days * 24).toFixed(2)} hours`);
    setOutput('monthly-spend', report.volume.usdPerMonth, fmtUsd(report.volume.usdPerMonth));
    const best = report.recommendations.reduce((max, r) => Math.max(max, r.estimatedUsdPerMonth), 0);
    setOutput('best-saving', best, fmtUsd(best));
    setOutput('team-samples', report.sampling.teamSamples, fmtInt(report.sampling.teamSamples));
    setOutput('sample-rate', report.sampling.rate, fmtPct(report.sampling.rate));
    const cpu = report.sampling.shadowCpuMicrosRecentMedian;
    setOutput('shadow-cpu', cpu == null ? '' : cpu, cpu == null ? '–' : `${fmtInt(cpu)} µs`);
    document.getElementById('shadow-cpu').title = `median of the last 256 evaluations (${report.sampling.cpuClock} CPU clock)`;
    setOutput('dropped', report.sampling.dropped, fmtInt(report.sampling.dropped));
    $('#window-note').textContent = `Ledger window ${w.from.replace('T', ' ').slice(0, 19)} → ${w.to.replace('T', ' ').slice(0, 19)} UTC (${w.basis}); ` +
      'figures = spend per model in the window × 30 ÷ window days × the share the change saved on sampled requests. ' +
      'Observations are this replica\'s samples (saved in its data directory across restarts).';
    $('#recommendations tbody').replaceChildren(...report.recommendations.map(recommendationRow));
    $('#empty').hidden = report.recommendations.length > 0;
    $('#status').textContent = 'Updated ' + new Date().toISOString().slice(11, 19) + ' UTC';
    document.body.dataset.ready = 'true';
  }

  function refresh() {
    load().catch((error) => {
      $('#status').textContent = 'Error: ' + error.message;
      document.body.dataset.ready = 'error';
    });
  }

  async function init() {
    const teams = await api('/admin/teams?limit=1000');
    const select = $('#team');
    select.replaceChildren(...teams.data.map((t) => {
      const option = document.createElement('option');
      option.value = t.id;
      option.textContent = t.name;
      return option;
    }));
    const wanted = new URLSearchParams(window.location.search).get('team');
    if (wanted && teams.data.some((t) => t.id === wanted)) select.value = wanted;
    select.addEventListener('change', () => {
      history.replaceState(null, '', '?team=' + encodeURIComponent(select.value));
      refresh();
    });
    refresh();
  }

  document.addEventListener('DOMContentLoaded', () => {
    init().catch((error) => {
      $('#status').textContent = 'Error: ' + error.message;
      document.body.dataset.ready = 'error';
    });
  });
})();
