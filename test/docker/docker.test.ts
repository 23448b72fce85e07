// docker/Dockerfile and docker/compose.yaml without a Docker engine: every path, script and command they name
// exists, the compose services, Prometheus and Grafana refer to each other consistently, and the runtime stage's
// steps run for real: a clean `npm ci --omit=dev` of the package, the built server copied in as the image copies it,
// started by the image's entrypoint until its HEALTHCHECK passes.

import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { parse } from 'yaml';
import { makeTempDir, sleep } from '../helpers/server.js';

// Parsed YAML and JSON are untyped trees here.
type Json = any;

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const dockerDir = path.join(repoRoot, 'docker');
const packageJson = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { scripts: Record<string, string>; devDependencies: Record<string, string> };

interface Instruction {
  keyword: string;
  /** The text after the keyword, continuation lines joined. */
  args: string;
}

interface Stage {
  name: string;
  instructions: Instruction[];
}

/** The Dockerfile's stages and their instructions (comments dropped, `\` continuations joined). */
function dockerfileStages(text: string): Stage[] {
  const logical = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
  const stages: Stage[] = [];
  for (const line of logical) {
    const [keyword, ...rest] = line.split(/\s+/);
    const instruction = { keyword: keyword!.toUpperCase(), args: rest.join(' ') };
    if (instruction.keyword === 'FROM') stages.push({ name: /\bAS\s+(\S+)/i.exec(instruction.args)?.[1] ?? String(stages.length), instructions: [] });
    else stages.at(-1)!.instructions.push(instruction);
  }
  return stages;
}

/** COPY's flags, sources and destination. */
function copyArgs(args: string): { from: string | null; sources: string[]; dest: string } {
  const words = args.split(/\s+/);
  const from = words.find((w) => w.startsWith('--from='))?.slice('--from='.length) ?? null;
  const paths = words.filter((w) => !w.startsWith('--'));
  return { from, sources: paths.slice(0, -1), dest: paths.at(-1)! };
}

/** A RUN command without BuildKit's `--mount=…` flags (build-cache hints). */
function runCommand(args: string): string {
  return args.replace(/^(--\S+\s+)+/, '');
}

function execForm(args: string): string[] {
  const json = args.replace(/^(--\S+\s+)*(CMD\s+)?/, '');
  return JSON.parse(json) as string[];
}

const stages = dockerfileStages(readFileSync(path.join(dockerDir, 'Dockerfile'), 'utf8'));
const stage = (name: string): Stage => stages.find((s) => s.name === name)!;
const instructions = (s: Stage, keyword: string): Instruction[] => s.instructions.filter((i) => i.keyword === keyword);

t.test('the Dockerfile builds in one stage and runs non-root in another, with a data volume and a healthcheck', async (t) => {
  t.same(stages.map((s) => s.name), ['build', 'runtime']);
  const runtime = stage('runtime');
  t.equal(instructions(runtime, 'USER')[0]?.args, 'node', 'runs as the unprivileged node user');
  t.match(instructions(runtime, 'VOLUME')[0]?.args, /"\/data"/);
  t.match(instructions(runtime, 'ENV').map((i) => i.args).join(' '), /DRIFTDB_DATA_DIR=\/data/);
  t.same(execForm(instructions(runtime, 'HEALTHCHECK')[0]!.args), ['node', 'docker/healthcheck.mjs']);
  t.same(execForm(instructions(runtime, 'ENTRYPOINT')[0]!.args), ['node', 'dist/src/cli.js']);
  t.same(execForm(instructions(runtime, 'CMD')[0]!.args), ['serve']);
  t.notOk(instructions(runtime, 'RUN').some((i) => /npm ci(?!.*--omit=dev)/.test(i.args)), 'the runtime installs production dependencies only');
});

t.test('every file the Dockerfile copies and every command it runs exists', async (t) => {
  for (const s of stages) {
    for (const copy of instructions(s, 'COPY').map((i) => copyArgs(i.args))) {
      for (const source of copy.sources) {
        // From the context (the repository root), or what the build stage made under its WORKDIR (/app).
        const local = copy.from === null ? source : path.relative('/app', source);
        t.ok(existsSync(path.join(repoRoot, local)), `${s.name}: COPY ${copy.from === null ? '' : `--from=${copy.from} `}${source} exists`);
      }
    }
    for (const run of instructions(s, 'RUN').map((i) => runCommand(i.args))) {
      for (const script of run.matchAll(/npm run (\S+)/g)) t.ok(packageJson.scripts[script[1]!], `${s.name}: npm run ${script[1]} exists`);
      const tsc = /npx tsc -p (\S+)/.exec(run);
      if (tsc !== null) {
        t.ok(existsSync(path.join(repoRoot, tsc[1]!)), `${s.name}: ${tsc[1]} exists`);
        t.ok(packageJson.devDependencies['typescript'], 'typescript is a dev dependency the build stage installs');
      }
    }
  }
  for (const file of ['dist/src/cli.js', 'docker/healthcheck.mjs', 'openapi.yaml', 'package-lock.json']) t.ok(existsSync(path.join(repoRoot, file)), file);
});

t.test('compose: the build, every mounted file, the secret, the scrape target and the provisioning agree', async (t) => {
  const compose: Json = parse(readFileSync(path.join(dockerDir, 'compose.yaml'), 'utf8'));
  t.same(Object.keys(compose.services).sort(), ['driftdb', 'grafana', 'prometheus']);
  const build = compose.services.driftdb.build;
  t.ok(existsSync(path.join(dockerDir, build.context, build.dockerfile)), 'the build context holds the Dockerfile');
  const mounts = new Map<string, string>();
  for (const [name, service] of Object.entries<Json>(compose.services)) {
    for (const volume of service.volumes ?? []) {
      const [source, target] = String(volume).split(':');
      if (source!.startsWith('.')) {
        t.ok(existsSync(path.join(dockerDir, source!)), `${name}: ${source} exists`);
        mounts.set(target!, path.join(dockerDir, source!));
      } else {
        t.ok(compose.volumes[source!] !== undefined, `${name}: volume ${source} is declared`);
      }
    }
  }
  t.match(compose.services.driftdb.environment.DRIFTDB_ADMIN_PASSWORD, /^\$\{DRIFTDB_ADMIN_PASSWORD:\?/);
  t.equal(compose.secrets.driftdb_admin_password.environment, 'DRIFTDB_ADMIN_PASSWORD');

  const prometheus: Json = parse(readFileSync(mounts.get('/etc/prometheus/prometheus.yml')!, 'utf8'));
  for (const rules of prometheus.rule_files) t.ok(mounts.has(rules), `rule file ${rules} is mounted`);
  const job = prometheus.scrape_configs.find((c: Json) => c.job_name === 'driftdb');
  t.equal(job.metrics_path, '/metrics');
  t.equal(job.basic_auth.password_file, '/run/secrets/driftdb_admin_password', 'the password comes from the compose secret');
  const [host, port] = String(job.static_configs[0].targets[0]).split(':');
  t.ok(compose.services[host!], `the scrape target ${host} is a service`);
  t.ok(compose.services.driftdb.ports.some((p: string) => p.endsWith(`:${port}`)), `DriftDB serves on ${port}`);

  const datasources: Json = parse(readFileSync(mounts.get('/etc/grafana/provisioning/datasources/prometheus.yml')!, 'utf8'));
  const providers: Json = parse(readFileSync(mounts.get('/etc/grafana/provisioning/dashboards/driftdb.yml')!, 'utf8'));
  const dashboardDir = providers.providers[0].options.path;
  t.ok([...mounts.keys()].some((target) => target.startsWith(`${dashboardDir}/`)), 'the dashboard is mounted where the provider reads');
  const dashboard: Json = JSON.parse(readFileSync(path.join(dockerDir, 'grafana', 'driftdb.json'), 'utf8'));
  const uids = new Set(dashboard.panels.filter((p: Json) => p.datasource).map((p: Json) => p.datasource.uid));
  t.same([...uids], [datasources.datasources[0].uid], 'panels use the provisioned datasource');
  t.equal(new URL(datasources.datasources[0].url).hostname, 'prometheus');
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

t.test("the runtime stage's steps, run for real, make a tree whose entrypoint serves until the healthcheck passes", async (t) => {
  const runtime = stage('runtime');
  const app = path.join(makeTempDir('driftdb-image-'), 'app');
  mkdirSync(app, { recursive: true });
  const env: Record<string, string> = {};
  for (const instruction of runtime.instructions) {
    if (instruction.keyword === 'COPY') {
      const copy = copyArgs(instruction.args);
      for (const source of copy.sources) {
        const from = path.join(repoRoot, copy.from === null ? source : path.relative('/app', source));
        const to = copy.dest.endsWith('/') ? path.join(app, copy.dest, path.basename(source)) : path.join(app, copy.dest);
        cpSync(from, to, { recursive: true });
      }
    } else if (instruction.keyword === 'RUN') {
      const command = runCommand(instruction.args);
      // Directories of the image's file system (/data, /tls): the test maps the data dir to a temp dir instead.
      if (/^mkdir -p \//.test(command)) continue;
      const result = spawnSync('sh', ['-c', command], { cwd: app, encoding: 'utf8', timeout: 300_000, env: { ...process.env, npm_config_prefer_offline: 'true' } });
      t.equal(result.status, 0, `RUN ${command}${result.status === 0 ? '' : `\n${result.stderr.slice(-2000)}`}`);
    } else if (instruction.keyword === 'ENV') {
      for (const pair of instruction.args.split(/\s+/)) {
        const [name, value] = pair.split('=');
        env[name!] = value!;
      }
    }
  }
  t.ok(existsSync(path.join(app, 'node_modules', 'fastify')), 'production dependencies are installed');
  t.notOk(existsSync(path.join(app, 'node_modules', 'tap')), 'development dependencies are not');

  const port = await freePort();
  const serverEnv: Record<string, string> = {};
  for (const [name, value] of Object.entries(process.env)) if (!name.startsWith('DRIFTDB_') && value !== undefined) serverEnv[name] = value;
  Object.assign(serverEnv, env, {
    DRIFTDB_DATA_DIR: path.join(app, '..', 'data'),
    DRIFTDB_HOST: '127.0.0.1',
    DRIFTDB_PORT: String(port),
    DRIFTDB_ADMIN_PASSWORD: 'image-test-password',
  });
  const [command, ...args] = [...execForm(instructions(runtime, 'ENTRYPOINT')[0]!.args), ...execForm(instructions(runtime, 'CMD')[0]!.args)];
  const server = spawn(command === 'node' ? process.execPath : command!, args, { cwd: app, env: serverEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  server.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  server.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => server.on('exit', (code) => resolve(code)));
  t.teardown(() => {
    if (server.exitCode === null) server.kill('SIGKILL');
  });

  const [healthCommand, ...healthArgs] = execForm(instructions(runtime, 'HEALTHCHECK')[0]!.args);
  let healthy = false;
  // Waits for a healthy answer with a generous bound (a busy machine starts slowly); it asserts no duration.
  for (let attempt = 0; attempt < 600 && !healthy && server.exitCode === null; attempt++) {
    // Spawned asynchronously: a synchronous probe would hold back the server's output this test reads.
    const probe = spawn(healthCommand === 'node' ? process.execPath : healthCommand!, healthArgs, { cwd: app, env: serverEnv, stdio: 'ignore', timeout: 10_000 });
    healthy = (await new Promise<number | null>((resolve) => probe.on('exit', resolve))) === 0;
    if (!healthy) await sleep(100);
  }
  t.ok(healthy, `the HEALTHCHECK passes against the entrypoint's server\n${healthy ? '' : output.slice(-3000)}`);
  // The line is logged once listen() returns, which may be just after the first probe got its answer.
  for (let i = 0; i < 200 && !output.includes('"msg":"listening"'); i++) await sleep(50);
  t.match(output, /"msg":"listening"/);
  t.match(output, new RegExp(`"url":"https://127\\.0\\.0\\.1:${port}"`), 'TLS self-signed, as the image defaults');
  server.kill('SIGTERM');
  t.equal(await exited, 0, 'a clean stop');
});
