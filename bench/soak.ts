// `npm run bench:soak`: the whole local stack under steady load while a seeded chaos loop breaks it, then an audit of
// what happened to every job. Several tenants run closed-loop clients (personalize, then generate with the weights) for
// --minutes; meanwhile the runner is SIGKILLed and restarted, the edge and PostgreSQL are restarted and the webhook
// receiver answers 503 for a while, at seeded moments. Then the chaos stops, the Cron sweep runs until every accepted
// job is terminal (bounded), webhook retries are let finish, and the database, the runner's log and the receiver are
// compared: accepted, succeeded, failed (by reason), lost, run twice, webhook deliveries per event id, time to
// completion. Seeded (--seed), bounded (--minutes and a hard timeout), stops by itself; --quick is a one-minute smoke run.
// Writes bench/results/soak.json (soak-quick.json for --quick).
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import postgres from 'postgres';
import { Api, sleep, TERMINAL } from '../test/e2e/support/api.ts';
import { startE2eStack, type E2eStack } from '../test/e2e/support/e2e-stack.ts';
import { facePng } from '../test/e2e/support/face.ts';
import { WebhookReceiver } from '../test/e2e/support/webhook-receiver.ts';
import { printTable, type Row, writeResults } from './report.ts';
import { seededRng } from '../gpu-runner/onnx/testing/random.ts';

const { values: args } = parseArgs({
  options: {
    seed: { type: 'string', default: '1' },
    minutes: { type: 'string' },
    quick: { type: 'boolean', default: false },
    tenants: { type: 'string', default: '3' },
  },
});
const QUICK = args.quick;
const SEED = Number(args.seed);
const LOAD_MINUTES = Number(args.minutes ?? (QUICK ? 1 : 10));
const TENANTS = Number(args.tenants);
/** Closed-loop clients per tenant: enough to keep the one runner busy (and its small queue full) without flooding it. */
const CLIENTS_PER_TENANT = 2;
/** The cheapest real jobs of the tiny pack, so that 600+ fit in ten minutes on a 2-core machine. */
const FINETUNE_STEPS = [2, 3];
const GENERATION = { num_images: 1, steps: 2, width: 64, height: 64 };
/** Every event but progress (one a second per running job would only add load, not coverage). */
const WEBHOOK_EVENTS = ['personalization.started', 'personalization.succeeded', 'personalization.failed', 'personalization.canceled', 'generation.succeeded', 'generation.failed'];
/**
 * Short leases so that a killed runner's jobs are handed out again within the run; the runner reports progress (and
 * so renews) more often than this. Attempts: a job may meet several kills in a row.
 */
const LEASE_SECONDS = 30;
const MAX_ATTEMPTS = 5;
/** The production retry schedule (8 attempts, >= 24 h) compressed to >= 72 s: longer than any receiver outage here. */
const WEBHOOK_RETRY_SCALE = 1 / 1200;
/** Production runs the Cron sweep every minute; compressed like the leases. */
const CRON_EVERY_MS = 5_000;
/** Gaps between faults, and how long each fault lasts. */
const FAULT_GAP_S: [number, number] = QUICK ? [6, 12] : [15, 35];
const RUNNER_DOWN_S: [number, number] = [2, 6];
const POSTGRES_DOWN_S: [number, number] = [2, 6];
const RECEIVER_DOWN_S: [number, number] = [5, 30];
const POLL_MS = 500;
/** Bounds of the phases after the load: every job terminal, then every webhook delivery settled. */
const DRAIN_JOBS_MS = (QUICK ? 4 : 8) * 60_000;
/**
 * `wrangler dev` keeps Queue messages in memory (Miniflare's broker: a setTimeout per delayed message), so an edge
 * restart drops every webhook retry in flight; the Cron sweep hands such a delivery back only once it is overdue by
 * the sweep's grace (SWEEP_GRACE_SECONDS in edge/webhooks/consumer.ts, unscaled; not imported: the edge's module types
 * need the Workers globals). Production Queues are durable; here the drain waits that long.
 */
const SWEEP_GRACE_SECONDS = 10 * 60;
const DRAIN_WEBHOOKS_MS = SWEEP_GRACE_SECONDS * 1000 + 3 * 60_000;
/** Stack start, setup, drain and audit on top of the load; past this the run stops, cleans up and exits non-zero. */
const HARD_TIMEOUT_MS = LOAD_MINUTES * 60_000 + 8 * 60_000 + DRAIN_JOBS_MS + DRAIN_WEBHOOKS_MS;

type Kind = 'personalization' | 'generation';
type FaultKind = 'runner-kill' | 'edge-restart' | 'postgres-restart' | 'receiver-down';
interface Fault {
  kind: FaultKind;
  atS: number;
  durationS: number;
  detail: string;
}

/** Two streams, so that how fast the clients go does not move the fault schedule. */
const chaosRandom = seededRng(SEED);
const clientRandom = seededRng(SEED ^ 0x9e3779b9);
const between = ([lo, hi]: [number, number]) => lo + (hi - lo) * chaosRandom();
const pick = <T>(items: readonly T[]): T => items[Math.floor(clientRandom() * items.length)]!;

const t0 = Date.now();
const elapsedS = () => (Date.now() - t0) / 1000;
const say = (msg: string) => console.log(`[soak ${elapsedS().toFixed(1).padStart(6)} s] ${msg}`);

// ---- clients ----------------------------------------------------------------------------------------------------

interface Tenant {
  index: number;
  api: Api;
  subjectId: string;
  /** Weights a generation can use when its own personalization failed. */
  fallbackWeightsId: string;
}

/** What the clients saw: ids they were given (202, or 200 on an idempotent replay) and requests they gave up on. */
const confirmed = new Map<string, { kind: Kind; tenant: number; key: string }>();
const abandonedKeys: { kind: Kind; tenant: number; key: string }[] = [];
const submitRetries = { status: new Map<number, number>(), network: 0 };
const rejected = new Map<string, number>();

const count = <K>(map: Map<K, number>, key: K) => map.set(key, (map.get(key) ?? 0) + 1);

/**
 * POST with one Idempotency-Key, retried with the same key on 503 / 429 / 409-in-progress / 5xx / connection errors
 * until accepted or `until` passes. Returns the job id, or null when it gave up or the request was refused.
 */
async function submit(tenant: Tenant, kind: Kind, body: Record<string, unknown>, until: number): Promise<string | null> {
  const key = randomUUID();
  const path = kind === 'personalization' ? '/v1/personalizations' : '/v1/generations';
  while (Date.now() < until) {
    let response: Response;
    try {
      response = await fetch(new URL(path, tenant.api.baseUrl), {
        method: 'POST',
        headers: { authorization: `Bearer ${tenant.api.key}`, 'content-type': 'application/json', 'idempotency-key': key },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(30_000),
      });
    } catch {
      submitRetries.network++;
      await sleep(1_000);
      continue;
    }
    const text = await response.text();
    if (response.status === 202 || response.status === 200) {
      const id = (JSON.parse(text) as { id: string }).id;
      confirmed.set(id, { kind, tenant: tenant.index, key });
      return id;
    }
    const code = (() => {
      try {
        return (JSON.parse(text) as { error?: { code?: string } }).error?.code ?? '';
      } catch {
        return '';
      }
    })();
    const retryable = response.status >= 500 || response.status === 429 || code === 'idempotency_request_in_progress';
    if (!retryable) {
      count(rejected, `${kind} ${response.status} ${code}`);
      return null;
    }
    count(submitRetries.status, response.status);
    const retryAfter = Number(response.headers.get('retry-after'));
    await sleep(Math.min(Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : 1_000, 5_000));
  }
  abandonedKeys.push({ kind, tenant: tenant.index, key });
  return null;
}

/** Polls until the job is terminal or `until` passes; transport errors and 5xx are outages, not answers. */
async function settle(tenant: Tenant, kind: Kind, id: string, until: number): Promise<{ status: string; weights_id?: string } | null> {
  const path = `/v1/${kind === 'personalization' ? 'personalizations' : 'generations'}/${id}`;
  while (Date.now() < until) {
    try {
      const response = await tenant.api.request('GET', path);
      if (response.ok) {
        const job = (await response.json()) as { status: string; weights_id?: string };
        if ((TERMINAL as readonly string[]).includes(job.status)) return job;
      } else {
        await response.body?.cancel();
      }
    } catch {
      // The edge or its database is down: ask again.
    }
    await sleep(POLL_MS);
  }
  return null;
}

/** One closed-loop client: personalize, then generate with those weights (or the tenant's first ones), until `until`. */
async function client(tenant: Tenant, until: number): Promise<void> {
  while (Date.now() < until) {
    const personalization = await submit(tenant, 'personalization', {
      subject_id: tenant.subjectId,
      method: 'hyperdreambooth',
      finetune: { steps: pick(FINETUNE_STEPS) },
      webhook_url: receiver.url,
      webhook_events: WEBHOOK_EVENTS,
    }, until);
    if (!personalization) {
      // Refused (counted) or given up at the end of the load: no tight loop either way.
      await sleep(1_000);
      continue;
    }
    const done = await settle(tenant, 'personalization', personalization, until);
    if (!done) return;
    const weightsId = done.status === 'succeeded' && done.weights_id ? done.weights_id : tenant.fallbackWeightsId;
    const generation = await submit(tenant, 'generation', {
      weights_id: weightsId,
      prompt: 'A portrait of a sks face',
      seed: Math.floor(clientRandom() * 1e6),
      ...GENERATION,
      webhook_url: receiver.url,
      webhook_events: WEBHOOK_EVENTS,
    }, until);
    if (generation) await settle(tenant, 'generation', generation, until);
  }
}

// ---- chaos ------------------------------------------------------------------------------------------------------

const faults: Fault[] = [];

/** Each round injects every kind of fault once, in a seeded order, so even a short run meets all four. */
async function chaos(e2e: E2eStack, until: number): Promise<void> {
  const receiverOutages: Promise<void>[] = [];
  let round: FaultKind[] = [];
  while (true) {
    await sleep(between(FAULT_GAP_S) * 1000);
    if (Date.now() >= until) break;
    if (round.length === 0) {
      round = ['runner-kill', 'edge-restart', 'postgres-restart', 'receiver-down'];
      for (let i = round.length - 1; i > 0; i--) {
        const j = Math.floor(chaosRandom() * (i + 1));
        [round[i], round[j]] = [round[j]!, round[i]!];
      }
    }
    const kind = round.shift()!;
    const atS = elapsedS();
    const started = Date.now();
    const done = (detail: string) => {
      faults.push({ kind, atS: Number(atS.toFixed(1)), durationS: Number(((Date.now() - started) / 1000).toFixed(1)), detail });
      say(`fault ${kind} (${detail}) over after ${((Date.now() - started) / 1000).toFixed(1)} s`);
    };
    say(`fault ${kind}`);
    try {
      if (kind === 'runner-kill') {
        const downS = between(RUNNER_DOWN_S);
        await e2e.stack.killRunner('SIGKILL');
        await sleep(downS * 1000);
        await e2e.stack.restartRunner();
        done(`SIGKILL, restarted after ${downS.toFixed(1)} s`);
      } else if (kind === 'edge-restart') {
        await e2e.stack.restartEdge();
        done('wrangler dev stopped and started');
      } else if (kind === 'postgres-restart') {
        const downS = between(POSTGRES_DOWN_S);
        await e2e.stack.restartPostgres(downS * 1000);
        done(`stopped for ${downS.toFixed(1)} s`);
      } else {
        const downS = between(RECEIVER_DOWN_S);
        receiver.down = true;
        // Runs beside the next faults: the receiver's outage is the tenant's, not the stack's.
        receiverOutages.push(sleep(downS * 1000).then(() => {
          receiver.down = false;
          done(`answers 503 for ${downS.toFixed(1)} s`);
        }));
      }
    } catch (error) {
      done(`failed: ${(error as Error).message.split('\n')[0]}`);
    }
  }
  await Promise.all(receiverOutages);
}

// ---- audit ------------------------------------------------------------------------------------------------------

/** Runner log: how many times each job's work ran to success (the runner logs 'job succeeded' once per run). */
const runnerSucceeded = new Map<string, number>();
const runnerStarted = new Map<string, number>();

function onOutput(name: string, line: string): void {
  if (name !== 'runner' || !line.startsWith('{')) return;
  try {
    const entry = JSON.parse(line) as { msg?: string; job_id?: string };
    if (!entry.job_id) return;
    if (entry.msg === 'job succeeded') count(runnerSucceeded, entry.job_id);
    if (entry.msg === 'job started') count(runnerStarted, entry.job_id);
  } catch {
    // Not a log line of ours.
  }
}

function percentile(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

const receiver = new WebhookReceiver();

async function main(): Promise<void> {
  say(`seed ${SEED}, load ${LOAD_MINUTES} min, ${TENANTS} tenants x ${CLIENTS_PER_TENANT} clients${QUICK ? ' (quick)' : ''}`);
  await receiver.start();
  const e2e = await startE2eStack({
    ownPostgres: true,
    edgeVars: { JOB_LEASE_SECONDS: String(LEASE_SECONDS), JOB_MAX_ATTEMPTS: String(MAX_ATTEMPTS), WEBHOOK_RETRY_SCALE: String(WEBHOOK_RETRY_SCALE) },
    // Room in the runner's queue for every client's job: back-pressure (503) is its own end-to-end test; here the
    // jobs should meet the faults, not the dispatch backoff.
    runnerEnv: { RUNNER_QUEUE_CAPACITY: String(TENANTS * CLIENTS_PER_TENANT + 2), RUNNER_EVENT_RETRY_MIN_MS: '200', RUNNER_EVENT_RETRY_MAX_MS: '2000' },
    onOutput,
  });
  let hardStop = false;
  const cleanup = async () => {
    await e2e.close().catch(() => {});
    await receiver.stop().catch(() => {});
  };
  const timer = setTimeout(() => {
    hardStop = true;
    say(`hard timeout (${HARD_TIMEOUT_MS / 60_000} min): stopping`);
    void cleanup().finally(() => process.exit(2));
  }, HARD_TIMEOUT_MS);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void cleanup().finally(() => process.exit(130)));
  const sql = postgres(e2e.stack.databaseUrl, { max: 2, onnotice: () => {} });
  try {
    // Setup, before any fault: tenants, their secrets, a subject each and one personalization for fallback weights.
    const tenants: Tenant[] = [];
    const setupJobs = new Set<string>();
    for (let index = 0; index < TENANTS; index++) {
      const api = index === 0 ? e2e.tenant : await e2e.newTenant(`soak tenant ${index}`);
      const secrets = await api.expectJson<{ data: { secret: string }[] }>('GET', '/v1/webhooks/secrets', 200);
      receiver.secrets.push(...secrets.data.map((s) => s.secret));
      const subject = await api.uploadSubject(await facePng(index), `soak subject ${index}`);
      const first = await api.expectJson<{ id: string }>('POST', '/v1/personalizations', 202, {
        json: { subject_id: subject.id, method: 'hyperdreambooth', finetune: { steps: FINETUNE_STEPS[0] } },
        idempotent: true,
      });
      setupJobs.add(first.id);
      const done = await api.waitFor(`/v1/personalizations/${first.id}`, undefined, 120_000);
      if (done.status !== 'succeeded') throw new Error(`setup personalization ${first.id} ended ${done.status}: ${JSON.stringify(done.error)}`);
      tenants.push({ index, api, subjectId: subject.id, fallbackWeightsId: done.weights_id as string });
    }

    // Load and chaos.
    const loadStart = Date.now();
    const loadEnd = loadStart + LOAD_MINUTES * 60_000;
    say('load and chaos start');
    const cron = setInterval(() => void e2e.runCron().catch(() => {}), CRON_EVERY_MS);
    const progress = setInterval(() => say(`accepted ${confirmed.size} jobs, ${faults.length} faults so far`), 30_000);
    await Promise.all([
      chaos(e2e, loadEnd),
      ...tenants.flatMap((tenant) => Array.from({ length: CLIENTS_PER_TENANT }, () => client(tenant, loadEnd))),
    ]);
    clearInterval(progress);
    clearInterval(cron);
    const loadS = (Date.now() - loadStart) / 1000;
    say(`load over after ${loadS.toFixed(0)} s; ${confirmed.size} jobs accepted; draining`);

    // Drain: the sweep until every job is terminal, then the webhook retries until no delivery is pending.
    const live = async () =>
      Number((await sql`SELECT count(*)::int AS n FROM jobs WHERE status NOT IN ('succeeded', 'failed', 'canceled')`)[0]!.n);
    const drainStart = Date.now();
    let left = await live();
    while (left > 0 && Date.now() - drainStart < DRAIN_JOBS_MS && !hardStop) {
      await e2e.runCron().catch(() => {});
      await sleep(3_000);
      left = await live();
    }
    const drainJobsS = (Date.now() - drainStart) / 1000;
    say(`jobs drained in ${drainJobsS.toFixed(0)} s (${left} not terminal)`);
    const pending = async () => Number((await sql`SELECT count(*)::int AS n FROM webhook_deliveries WHERE state = 'pending'`)[0]!.n);
    const webhooksStart = Date.now();
    let pendingLeft = await pending();
    let lastReport = Date.now();
    while (pendingLeft > 0 && Date.now() - webhooksStart < DRAIN_WEBHOOKS_MS && !hardStop) {
      await e2e.runCron().catch(() => {});
      await sleep(3_000);
      pendingLeft = await pending();
      if (Date.now() - lastReport > 60_000) {
        say(`${pendingLeft} webhook deliveries pending (the sweep takes back a lost one ${SWEEP_GRACE_SECONDS} s after it was due)`);
        lastReport = Date.now();
      }
    }
    // A delivery marked delivered may still be on its way back from the receiver's answer: a moment for stragglers.
    await sleep(3_000);
    const drainWebhooksS = (Date.now() - webhooksStart) / 1000;
    say(`webhooks drained in ${drainWebhooksS.toFixed(0)} s (${pendingLeft} pending)`);

    // Audit, from PostgreSQL (the truth of what was accepted), the runner's log and the receiver.
    const jobs = (await sql`
      SELECT id, kind::text, status::text, attempts, error_code, idempotency_key, webhook_url,
             (params->>'num_images')::int AS num_images,
             extract(epoch FROM finished_at - created_at)::float8 AS seconds
      FROM jobs`).filter((job) => !setupJobs.has(job.id as string));
    const successEvents = new Map(
      (await sql`
        SELECT job_id, count(*)::int AS reported, count(*) FILTER (WHERE outcome = 'applied')::int AS applied
        FROM runner_events WHERE type = 'succeeded' GROUP BY job_id`).map((r) => [r.job_id as string, { reported: r.reported as number, applied: r.applied as number }]),
    );
    const weightsRows = new Map((await sql`SELECT job_id, count(*)::int AS n FROM weights GROUP BY job_id`).map((r) => [r.job_id as string, r.n as number]));
    const imageRows = new Map((await sql`SELECT job_id, count(*)::int AS n FROM generation_images GROUP BY job_id`).map((r) => [r.job_id as string, r.n as number]));
    const deliveries = await sql`
      SELECT id, job_id, event_type, state::text, attempts, extract(epoch FROM delivered_at - created_at)::float8 AS seconds
      FROM webhook_deliveries`;

    const byId = new Map(jobs.map((job) => [job.id as string, job]));
    const keys = new Set(jobs.map((job) => job.idempotency_key as string));
    const lost = [...confirmed.keys()].filter((id) => !byId.has(id) || !(TERMINAL as readonly string[]).includes(byId.get(id)!.status as string));
    const lostEvidence = lost.map((id) => ({ id, row: byId.get(id) ?? null }));
    const unconfirmed = jobs.filter((job) => !confirmed.has(job.id as string)).map((job) => job.id as string);
    const abandonedButCreated = abandonedKeys.filter((a) => keys.has(a.key)).length;

    // Run twice: any of the four signs, each counted per job.
    const succeededHooks = new Map<string, Set<string>>();
    for (const event of receiver.events) {
      if (event.status >= 300 || typeof event.data.id !== 'string' || !event.type.endsWith('.succeeded')) continue;
      const ids = succeededHooks.get(event.data.id) ?? new Set<string>();
      succeededHooks.set(event.data.id, ids.add(event.webhookId));
    }
    const distinctSucceededHooks = (id: string) => succeededHooks.get(id)?.size ?? 0;
    const succeededDeliveryRows = new Map<string, number>();
    for (const d of deliveries) if (/\.succeeded$/.test(d.event_type as string) && d.job_id) count(succeededDeliveryRows, d.job_id as string);
    const twice = jobs
      .map((job) => {
        const id = job.id as string;
        const signs = {
          runnerRunsToSuccess: runnerSucceeded.get(id) ?? 0,
          successEventsReported: successEvents.get(id)?.reported ?? 0,
          successEventsApplied: successEvents.get(id)?.applied ?? 0,
          results: job.kind === 'personalization' ? weightsRows.get(id) ?? 0 : (imageRows.get(id) ?? 0) / Math.max(1, (job.num_images as number) ?? 1),
          succeededEventRows: succeededDeliveryRows.get(id) ?? 0,
          succeededWebhooksReceived: distinctSucceededHooks(id),
        };
        return { id, kind: job.kind as string, status: job.status as string, attempts: job.attempts as number, runnerStarts: runnerStarted.get(id) ?? 0, ...signs };
      })
      .filter((s) => s.runnerRunsToSuccess > 1 || s.successEventsReported > 1 || s.successEventsApplied > 1 || s.results > 1 || s.succeededEventRows > 1 || s.succeededWebhooksReceived > 1);

    // Webhooks: each event id the edge created, against the distinct deliveries the receiver accepted.
    const acceptedPerId = new Map<string, number>();
    for (const event of receiver.events) if (event.status < 300) count(acceptedPerId, event.webhookId);
    const soakJobs = new Set(jobs.map((job) => job.id as string));
    const events = deliveries.filter((d) => d.job_id && soakJobs.has(d.job_id as string));
    const eventIds = new Set(events.map((d) => d.id as string));
    const notDelivered = events.filter((d) => (acceptedPerId.get(d.id as string) ?? 0) === 0);
    const deliveredTwice = events.filter((d) => (acceptedPerId.get(d.id as string) ?? 0) > 1);
    const unknownReceived = [...acceptedPerId.keys()].filter((id) => !eventIds.has(id) && !deliveries.some((d) => d.id === id)).length;
    const unverified = receiver.events.filter((e) => e.status === 401).length;
    const missingTerminalEvent = jobs.filter(
      (job) => job.webhook_url && ['succeeded', 'failed'].includes(job.status as string) && !events.some((d) => d.job_id === job.id && d.event_type === `${job.kind}.${job.status}`),
    ).length;

    const summary = (kind: Kind) => {
      const mine = jobs.filter((job) => job.kind === kind);
      const seconds = mine.filter((job) => job.status === 'succeeded').map((job) => job.seconds as number).sort((a, b) => a - b);
      const reasons: Record<string, number> = {};
      for (const job of mine.filter((j) => j.status === 'failed')) reasons[(job.error_code as string) ?? 'unknown'] = (reasons[(job.error_code as string) ?? 'unknown'] ?? 0) + 1;
      return {
        accepted: mine.length,
        succeeded: mine.filter((job) => job.status === 'succeeded').length,
        failed: mine.filter((job) => job.status === 'failed').length,
        canceled: mine.filter((job) => job.status === 'canceled').length,
        failedReasons: reasons,
        lost: lost.filter((id) => confirmed.get(id)!.kind === kind).length,
        runTwice: twice.filter((s) => s.kind === kind).length,
        retried: mine.filter((job) => (job.attempts as number) > 1).length,
        p50S: percentile(seconds, 50),
        p99S: percentile(seconds, 99),
        maxS: seconds.at(-1) ?? null,
      };
    };
    const perKind = { personalization: summary('personalization'), generation: summary('generation') };
    const deliverySeconds = events.filter((d) => d.seconds !== null).map((d) => d.seconds as number).sort((a, b) => a - b);
    const webhooks = {
      events: events.length,
      eventsByType: events.reduce<Record<string, number>>((acc, d) => ({ ...acc, [d.event_type as string]: (acc[d.event_type as string] ?? 0) + 1 }), {}),
      deliveredOnce: events.length - notDelivered.length - deliveredTwice.length,
      deliveredZero: notDelivered.length,
      deliveredMoreThanOnce: deliveredTwice.length,
      zeroByState: Object.fromEntries(['pending', 'delivered', 'dead'].map((s) => [s, notDelivered.filter((d) => d.state === s).length])),
      receivedUnknownIds: unknownReceived,
      refusedAttempts: receiver.events.filter((e) => e.status >= 300).length,
      unverifiedSignatures: unverified,
      terminalJobsWithoutTheirEvent: missingTerminalEvent,
      /** Event row created to the edge recording it delivered. */
      deliveryP50S: percentile(deliverySeconds, 50),
      deliveryP99S: percentile(deliverySeconds, 99),
      deliveryMaxS: deliverySeconds.at(-1) ?? null,
      deliveredLaterThanSweepGrace: deliverySeconds.filter((x) => x > SWEEP_GRACE_SECONDS).length,
    };

    const rows: Row[] = (['personalization', 'generation'] as const).map((kind) => {
      const s = perKind[kind];
      return {
        kind,
        accepted: s.accepted,
        succeeded: s.succeeded,
        failed: s.failed,
        'failed reasons': Object.entries(s.failedReasons).map(([k, v]) => `${k} ${v}`).join(', ') || '–',
        lost: s.lost,
        'run twice': s.runTwice,
        'retried (attempts > 1)': s.retried,
        'p50 s': s.p50S,
        'p99 s': s.p99S,
      };
    });
    printTable(`Soak, seed ${SEED}, ${loadS.toFixed(0)} s of load${QUICK ? ' (quick)' : ''}: jobs`, rows);
    printTable('Webhook events (per event id, deliveries the receiver accepted)', [
      { events: webhooks.events, 'exactly once': webhooks.deliveredOnce, '0 deliveries': webhooks.deliveredZero, '> 1 deliveries': webhooks.deliveredMoreThanOnce, 'refused attempts (receiver down)': webhooks.refusedAttempts, 'p50 s': webhooks.deliveryP50S, 'p99 s': webhooks.deliveryP99S, 'max s': webhooks.deliveryMaxS },
    ]);
    printTable('Faults injected', faults.map((f) => ({ 'at s': f.atS, fault: f.kind, 'lasted s': f.durationS, detail: f.detail })));
    if (twice.length > 0) printTable('Jobs with a sign of running twice', twice.slice(0, 20).map((s) => ({ ...s })));
    if (lost.length > 0) console.log(`lost jobs: ${JSON.stringify(lostEvidence.slice(0, 20))}`);

    const path = writeResults(QUICK ? 'soak-quick' : 'soak', {
      seed: SEED,
      quick: QUICK,
      command: `npm run bench:soak -- ${process.argv.slice(2).join(' ')}`.trim(),
      settings: { loadMinutes: LOAD_MINUTES, tenants: TENANTS, clientsPerTenant: CLIENTS_PER_TENANT, finetuneSteps: FINETUNE_STEPS, generation: GENERATION, leaseSeconds: LEASE_SECONDS, maxAttempts: MAX_ATTEMPTS, webhookRetryScale: WEBHOOK_RETRY_SCALE, cronEveryMs: CRON_EVERY_MS, faultGapS: FAULT_GAP_S },
      loadSeconds: loadS,
      drainJobsSeconds: drainJobsS,
      drainWebhooksSeconds: drainWebhooksS,
      jobs: perKind,
      lost: lostEvidence,
      runTwice: twice,
      /** Sanity of the log-based sign: runs to success the runner logged, against jobs that succeeded (setup included). */
      runnerLoggedSuccesses: { runs: [...runnerSucceeded.values()].reduce((a, b) => a + b, 0), jobs: runnerSucceeded.size, succeededInDatabase: perKind.personalization.succeeded + perKind.generation.succeeded + setupJobs.size },
      runTwiceDetection:
        'a job counts as run twice if any of: the runner logged "job succeeded" for it more than once (work ran to success twice, across restarts); ' +
        'more than one succeeded runner event was reported or applied for it (runner_events); more than one result (weights rows; generation_images rows / num_images); ' +
        'more than one *.succeeded webhook event row for it; or the receiver accepted more than one distinct *.succeeded webhook id for it',
      webhooks,
      notDeliveredSample: notDelivered.slice(0, 20),
      deliveredTwiceSample: deliveredTwice.slice(0, 20),
      client: {
        confirmed: confirmed.size,
        jobsNotConfirmedToClient: unconfirmed.length,
        abandonedRequests: abandonedKeys.length,
        abandonedButCreated,
        retriesByStatus: Object.fromEntries(submitRetries.status),
        retriesOnNetworkError: submitRetries.network,
        rejected: Object.fromEntries(rejected),
      },
      faults,
    });
    say(`results: ${path}`);
  } finally {
    clearTimeout(timer);
    await sql.end({ timeout: 5 }).catch(() => {});
    await cleanup();
  }
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
