// Minimal SVG charts for the TokenGateway dashboard (no dependencies, nothing loaded from the network).
'use strict';

window.TgCharts = (() => {
  const NS = 'http://www.w3.org/2000/svg';
  const PALETTE = ['#2f6fde', '#e8833a', '#3aa76d', '#c8372d', '#8a5cd1', '#1fa2b5', '#b58b1f', '#d45ba0'];
  const W = 640, H = 240, M = { l: 64, r: 12, t: 10, b: 46 };

  function el(name, attrs, text) {
    const node = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function svgRoot(container, label) {
    container.replaceChildren();
    const svg = el('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': label || '' });
    container.appendChild(svg);
    return svg;
  }

  function niceMax(v) {
    if (!(v > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    const n = v / p;
    return (n <= 1 ? 1 : n <= 2 ? 2 : n <= 5 ? 5 : 10) * p;
  }

  function empty(svg, text) {
    svg.appendChild(el('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle', class: 'empty' }, text || 'No data in this range'));
  }

  function yAxis(svg, max, format) {
    for (let i = 0; i <= 4; i++) {
      const y = M.t + (H - M.t - M.b) * (1 - i / 4);
      svg.appendChild(el('line', { x1: M.l, x2: W - M.r, y1: y, y2: y, class: 'axis' }));
      svg.appendChild(el('text', { x: M.l - 6, y: y + 3, 'text-anchor': 'end' }, format(max * i / 4)));
    }
  }

  function legend(svg, names) {
    const g = el('g', { class: 'legend' });
    let x = M.l;
    names.forEach((name, i) => {
      g.appendChild(el('rect', { x, y: H - 14, width: 10, height: 10, fill: PALETTE[i % PALETTE.length] }));
      const label = name.length > 22 ? name.slice(0, 21) + '…' : name;
      g.appendChild(el('text', { x: x + 14, y: H - 5 }, label));
      x += 24 + label.length * 6.2;
    });
    svg.appendChild(g);
  }

  /**
   * Line chart over time. series: [{ name, points: [{ t: epochMs, v: number }] }]; buckets: sorted epochMs of every bucket.
   */
  function line(container, series, buckets, opts) {
    const o = Object.assign({ format: (v) => String(v), timeLabel: (t) => new Date(t).toISOString().slice(5, 16).replace('T', ' ') }, opts);
    const svg = svgRoot(container, o.label);
    if (!buckets.length || !series.length) { empty(svg); return; }
    const max = niceMax(Math.max(...series.flatMap((s) => s.points.map((p) => p.v)), 0));
    yAxis(svg, max, o.format);
    const t0 = buckets[0], t1 = buckets[buckets.length - 1];
    const x = (t) => M.l + (t1 === t0 ? (W - M.l - M.r) / 2 : (W - M.l - M.r) * (t - t0) / (t1 - t0));
    const y = (v) => M.t + (H - M.t - M.b) * (1 - v / max);
    const ticks = Math.min(buckets.length, 6);
    for (let i = 0; i < ticks; i++) {
      const t = buckets[Math.round(i * (buckets.length - 1) / Math.max(1, ticks - 1))];
      svg.appendChild(el('text', { x: x(t), y: H - M.b + 14, 'text-anchor': 'middle' }, o.timeLabel(t)));
    }
    series.forEach((s, i) => {
      const color = PALETTE[i % PALETTE.length];
      const byT = new Map(s.points.map((p) => [p.t, p.v]));
      const pts = buckets.map((t) => [x(t), y(byT.get(t) || 0)]);
      svg.appendChild(el('polyline', { points: pts.map((p) => p.join(',')).join(' '), fill: 'none', stroke: color, 'stroke-width': 2 }));
      pts.forEach(([px, py], j) => {
        const dot = el('circle', { cx: px, cy: py, r: 2.5, fill: color });
        dot.appendChild(el('title', {}, `${s.name} · ${o.timeLabel(buckets[j])}: ${o.format(byT.get(buckets[j]) || 0)}`));
        svg.appendChild(dot);
      });
    });
    legend(svg, series.map((s) => s.name));
  }

  /** Horizontal bar chart. items: [{ name, v }] */
  function bars(container, items, opts) {
    const o = Object.assign({ format: (v) => String(v) }, opts);
    const svg = svgRoot(container, o.label);
    if (!items.length) { empty(svg, o.emptyText); return; }
    const max = niceMax(Math.max(...items.map((i) => i.v), 0));
    const rowH = Math.min(28, (H - M.t - 10) / items.length);
    const left = 150;
    items.forEach((item, i) => {
      const yy = M.t + i * rowH;
      const w = (W - left - 90) * item.v / max;
      svg.appendChild(el('text', { x: left - 6, y: yy + rowH * 0.65, 'text-anchor': 'end' }, item.name));
      svg.appendChild(el('rect', { x: left, y: yy + rowH * 0.15, width: Math.max(w, 1), height: rowH * 0.7, fill: PALETTE[i % PALETTE.length] }));
      svg.appendChild(el('text', { x: left + w + 6, y: yy + rowH * 0.65 }, o.format(item.v)));
    });
  }

  return { line, bars };
})();
