// TokenGateway dashboard pages: number formats and the admin API call shared by every page (loaded first, deferred).
'use strict';

window.TokenGatewayDashboard = (() => {
  const intFmt = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
  const fmtInt = (v) => intFmt.format(Number(v) || 0);
  const fmtUsd = (v) => '$' + (Number(v) || 0).toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 6 });
  const fmtPct = (v) => (Number.isFinite(v) ? (v * 100).toFixed(1) + '%' : '–');
  const $ = (sel) => document.querySelector(sel);

  // A JSON GET with the dashboard session cookie; an expired session goes back to the login page.
  async function api(path) {
    const response = await fetch(path, { credentials: 'same-origin', headers: { accept: 'application/json' } });
    if (response.status === 401) {
      window.location.assign('/dashboard/login');
      throw new Error('The session has expired.');
    }
    if (!response.ok) throw new Error(`${path} answered ${response.status}`);
    return response.json();
  }

  return Object.freeze({ fmtInt, fmtUsd, fmtPct, $, api });
})();
