// Renders deploy/helm/tokengateway without Helm (Helm is not packaged in Debian bookworm nor on npm as a binary that
// works offline). The chart's templates are restricted to a small subset of Helm's template language, and this
// renderer refuses anything outside it, so a template that needs real Helm fails CI instead of rendering wrongly:
//   {{ PATH }}                       PATH = .Values.a.b | .Release.Name|Namespace|Service | .Chart.Name|Version|AppVersion
//   {{ PATH | quote }}               {{ PATH | default PATH }}
//   {{ toYaml PATH | nindent N }}    {{ toPrettyJson PATH | nindent N }}
//   {{ if PATH }} / {{ if not PATH }} / {{ else }} / {{ end }}   (Go template truthiness)
//   {{- and -}} trim whitespace like Go templates.
// Usage: node render-chart.mjs <chartDir> [--values extra.yaml]... [--release name] [--namespace ns]
import { readFileSync, readdirSync } from "node:fs";
import { join, basename } from "node:path";
import YAML from "yaml";

export function renderChart(chartDir, { valueFiles = [], releaseName = "tokengateway", namespace = "default" } = {}) {
  const chart = YAML.parse(readFileSync(join(chartDir, "Chart.yaml"), "utf8"));
  let values = YAML.parse(readFileSync(join(chartDir, "values.yaml"), "utf8")) ?? {};
  for (const file of valueFiles) values = merge(values, YAML.parse(readFileSync(file, "utf8")) ?? {});
  const scope = {
    Values: values,
    Release: { Name: releaseName, Namespace: namespace, Service: "Helm" },
    Chart: { Name: chart.name, Version: chart.version, AppVersion: chart.appVersion },
  };
  const templatesDir = join(chartDir, "templates");
  const outputs = [];
  for (const name of readdirSync(templatesDir).filter((f) => f.endsWith(".yaml")).sort()) {
    const text = renderTemplate(readFileSync(join(templatesDir, name), "utf8"), scope, name);
    if (text.trim().length > 0) outputs.push(`---\n# Source: ${chart.name}/templates/${basename(name)}\n${text.replace(/^\n+/, "")}`);
  }
  return outputs.join("\n").replace(/\n*$/, "\n");
}

// Helm merges user values over the chart's: maps deep-merge, everything else replaces.
function merge(base, over) {
  if (!isMap(base) || !isMap(over)) return over;
  const out = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = k in base ? merge(base[k], v) : v;
  return out;
}
const isMap = (v) => v !== null && typeof v === "object" && !Array.isArray(v);

function renderTemplate(source, scope, file) {
  // Split into text and actions, applying {{- / -}} trimming.
  const parts = [];
  const re = /\{\{(-?)\s*([\s\S]*?)\s*(-?)\}\}/g;
  let last = 0;
  let trimNext = false;
  for (let m; (m = re.exec(source)); ) {
    let text = source.slice(last, m.index);
    if (trimNext) text = text.replace(/^\s+/, "");
    if (m[1] === "-") text = text.replace(/\s+$/, "");
    parts.push({ text }, { action: m[2], line: source.slice(0, m.index).split("\n").length });
    trimNext = m[3] === "-";
    last = re.lastIndex;
  }
  let tail = source.slice(last);
  if (trimNext) tail = tail.replace(/^\s+/, "");
  parts.push({ text: tail });

  let out = "";
  const stack = []; // { active, parentActive, seenElse }
  const active = () => stack.every((f) => f.active);
  for (const part of parts) {
    if ("text" in part) {
      if (active()) out += part.text;
      continue;
    }
    const where = `${file}:${part.line}`;
    const action = part.action;
    let m;
    if (action.startsWith("/*")) continue; // comment
    if ((m = /^if\s+(not\s+)?(\.[\w.]+)$/.exec(action))) {
      const value = truthy(lookup(scope, m[2], where));
      stack.push({ active: m[1] ? !value : value, seenElse: false });
    } else if (action === "else") {
      const frame = stack.at(-1);
      if (!frame || frame.seenElse) throw new Error(`${where}: unexpected else`);
      frame.active = !frame.active;
      frame.seenElse = true;
    } else if (action === "end") {
      if (!stack.pop()) throw new Error(`${where}: unexpected end`);
    } else if (active()) {
      out += evaluate(action, scope, where);
    } else {
      evaluate(action, scope, where); // still reject unsupported syntax in inactive branches
    }
  }
  if (stack.length) throw new Error(`${file}: missing end`);
  return out;
}

function evaluate(action, scope, where) {
  let m;
  if ((m = /^(toYaml|toPrettyJson)\s+(\.[\w.]+)\s*\|\s*nindent\s+(\d+)$/.exec(action))) {
    const value = lookup(scope, m[2], where);
    const text = m[1] === "toYaml" ? toYaml(value) : JSON.stringify(sortKeys(value), null, 2);
    const pad = " ".repeat(Number(m[3]));
    return "\n" + text.split("\n").map((l) => (l.length ? pad + l : l)).join("\n");
  }
  if ((m = /^(\.[\w.]+)$/.exec(action))) return scalar(lookup(scope, m[1], where), where);
  if ((m = /^(\.[\w.]+)\s*\|\s*quote$/.exec(action))) return JSON.stringify(String(lookup(scope, m[1], where) ?? ""));
  if ((m = /^(\.[\w.]+)\s*\|\s*default\s+(\.[\w.]+)$/.exec(action))) {
    const v = lookup(scope, m[1], where);
    return scalar(truthy(v) ? v : lookup(scope, m[2], where), where);
  }
  throw new Error(`${where}: unsupported template action {{ ${action} }} (see the header of render-chart.mjs)`);
}

function lookup(scope, path, where) {
  let v = scope;
  for (const key of path.slice(1).split(".")) {
    if (v === null || v === undefined) throw new Error(`${where}: ${path}: nil pointer evaluating ${key}`);
    v = v[key];
  }
  return v;
}

function scalar(v, where) {
  if (v !== null && typeof v === "object") throw new Error(`${where}: a map or list cannot be printed directly; use toYaml`);
  return v === undefined || v === null ? "" : String(v);
}

function truthy(v) {
  if (v === undefined || v === null || v === false || v === 0 || v === "") return false;
  if (Array.isArray(v)) return v.length > 0;
  if (isMap(v)) return Object.keys(v).length > 0;
  return true;
}

function sortKeys(v) {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (isMap(v)) return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys(v[k])]));
  return v;
}

// Like Helm's toYaml: keys sorted, no trailing newline, {} and [] for empty collections.
function toYaml(v) {
  return YAML.stringify(sortKeys(v), { lineWidth: 0, indentSeq: true }).replace(/\n$/, "");
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const chartDir = args.shift();
  const opts = { valueFiles: [] };
  while (args.length) {
    const flag = args.shift();
    if (flag === "--values" || flag === "-f") opts.valueFiles.push(args.shift());
    else if (flag === "--release") opts.releaseName = args.shift();
    else if (flag === "--namespace") opts.namespace = args.shift();
    else throw new Error(`unknown argument ${flag}`);
  }
  process.stdout.write(renderChart(chartDir, opts));
}
