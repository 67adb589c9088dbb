// Turns any failure of a tool call into one sentence a model can act on: the cause, then the next step.
import { HTTPError, NetworkError, SchemaValidationError, TimeoutError } from 'ky';
import { BodyTooLargeError, BudgetExceededError } from '../shared/bounded-body.ts';
import { clip } from '../shared/clip.ts';
import { readClaims } from '../shared/jwt.ts';
import { formatBytes } from '../shared/sizes.ts';
import { CONTAINER_MISSING, RouteUnsupportedError } from './client.ts';
import { ConfigError, type TokenSource } from './config.ts';

/** What a tool acts on, so that a 404 or a 409 names the right thing and the right next step. */
export type Resource = {
  /** What one is called, e.g. "container", "SSH key", "snapshot". */
  noun: string;
  /** "an" where the noun needs it ("an SSH key"); "a" by default. */
  article?: 'a' | 'an';
  /** The plural, where adding "s" is wrong. */
  plural?: string;
  /** The tool that lists them: the next step when one is missing. */
  list: string;
  /** The tools that show one and remove one: the next steps when one already exists. */
  show?: string;
  remove?: string;
};

export const CONTAINER: Resource = {
  noun: 'container',
  list: 'list_containers',
  show: 'get_container',
  remove: 'delete_container',
};

/** A failure whose message already is the sentence the model reads: the cause, then the next step. */
export class ActionableError extends Error {
  override name = 'ActionableError';
}

export type FailureContext = {
  /** What was being done, e.g. "create the container for alice". */
  action: string;
  /** What the call acts on; without one, a 404 means the daemon lacks the route. */
  resource?: Resource | null | undefined;
  username?: string | undefined;
  serverUrl: string;
  token: TokenSource;
  /** True for create: a timeout leaves the outcome unknown. */
  creates?: boolean;
  /** The image a create asked for. */
  image?: string | undefined;
  /** The timeout the call was given, unless the error carries the one the client really used. */
  timeoutMs: number;
};

/** The timeout a request really ran with, as the client records it on a TimeoutError. */
export const timeoutUsed = (error: unknown): number | undefined => {
  const ms = (error as { timeoutMs?: unknown } | undefined)?.timeoutMs;
  return typeof ms === 'number' && Number.isFinite(ms) ? ms : undefined;
};

/** "30 s", or "0.05 s" below a second. */
const seconds = (ms: number) => `${ms >= 1000 ? Math.round(ms / 1000) : ms / 1000} s`;

/** The daemon's own words: the "desc" of a gRPC error string, or the raw text. */
export function daemonMessage(data: unknown): string {
  let text = '';
  if (typeof data === 'string') {
    try {
      return daemonMessage(JSON.parse(data));
    } catch {
      text = data;
    }
  } else if (data && typeof data === 'object') {
    const body = data as { error?: unknown; message?: unknown };
    text = String(body.error ?? body.message ?? '');
  }
  const desc = /desc = ([\s\S]*)$/.exec(text);
  return clip((desc?.[1] ?? text).trim().replace(/\s+/g, ' '), 500);
}

/**
 * The daemon could not get the image: no route to the image server, an unknown remote, no such
 * image there. This daemon says "could not be fetched"; upstream passes Incus's words through.
 */
const IMAGE_UNAVAILABLE =
  /could ?n[o']t be fetched|failed getting (remote )?image|could ?n[o']t find the requested image|requested image could ?n[o']t be found|image[^;]{0,80}\bnot found|remote[^;]{0,60}(does ?n[o']t exist|not found)|unknown remote|image server/i;

function tokenClaims(token: TokenSource) {
  try {
    return readClaims(token.get());
  } catch {
    return undefined;
  }
}

/** The failure as one sentence; never throws, whatever the error or the token source does. */
export function describeFailure(error: unknown, ctx: FailureContext): string {
  try {
    return describe(error, ctx);
  } catch {
    let message: string;
    try {
      message = error instanceof Error ? error.message : String(error);
    } catch {
      message = 'an error that cannot be shown';
    }
    return `Could not ${ctx.action}: ${message}. Retry, or check the daemon's logs.`;
  }
}

function describe(error: unknown, ctx: FailureContext): string {
  if (error instanceof ConfigError || error instanceof ActionableError) return error.message;
  if (error instanceof RouteUnsupportedError) {
    return `This daemon does not support ${error.feature} (it has no ${error.route} route); upgrade the Containarium daemon (this project's \`containarium daemon --rest\` serves it). The other tools still work.`;
  }
  const show = ctx.resource?.show ?? ctx.resource?.list ?? 'get_container';
  if (error instanceof BodyTooLargeError) {
    // Over the budget all answers share: this one may be small, the others in flight are not.
    const together = error instanceof BudgetExceededError;
    const exceeded = together
      ? `The daemon's responses being read at once exceeded ${formatBytes(error.limit)} together, the most mcp-server holds (other calls are receiving large answers)`
      : `The daemon's response exceeded ${formatBytes(error.limit)}, the most mcp-server reads of one response`;
    if (ctx.creates)
      return `${exceeded}, so the outcome of the create is unknown. Call ${show} for ${ctx.username} before trying again; do not create it twice.`;
    return `${exceeded}, while trying to ${ctx.action}. ${together ? 'Retry when fewer calls are running' : "Ask for less (one user's container or metrics)"}, or check that CONTAINARIUM_SERVER_URL points at a Containarium daemon.`;
  }
  if (error instanceof HTTPError)
    return describeHttp(error.response.status, daemonMessage(error.data), ctx);
  if (error instanceof TimeoutError) {
    const within = seconds(timeoutUsed(error) ?? ctx.timeoutMs);
    const noun = ctx.resource?.noun ?? 'container';
    return ctx.creates
      ? `The daemon did not finish the create within ${within}, so the outcome is unknown: the ${noun} may still be being created. Call ${show} for ${ctx.username} before trying again; do not create it twice.`
      : `The daemon at ${ctx.serverUrl} did not answer within ${within} while trying to ${ctx.action}. Retry, or raise CONTAINARIUM_TIMEOUT if the server is slow.`;
  }
  // Bun's fetch errors are not always recognised by ky as network errors: they carry a system code.
  if (error instanceof NetworkError) return describeNetwork(error.cause, ctx);
  if (error instanceof Error && typeof (error as { code?: unknown }).code === 'string') {
    return describeNetwork(error, ctx);
  }
  if (error instanceof SchemaValidationError) {
    const issue = error.issues[0];
    const where = issue?.path?.map((p) => (typeof p === 'object' ? p.key : p)).join('.') ?? '';
    return `The answer from ${ctx.serverUrl} is not a Containarium API response (${where ? `${where}: ` : ''}${issue?.message ?? 'unexpected shape'}). Check that CONTAINARIUM_SERVER_URL points at a Containarium daemon.`;
  }
  const message = error instanceof Error ? error.message : String(error);
  return `Could not ${ctx.action}: ${message}.`;
}

function describeHttp(status: number, said: string, ctx: FailureContext): string {
  const who = ctx.username ? ` for user ${ctx.username}` : '';
  // Before the 5xx sentences: a missing image is no sign that Incus is down.
  if (ctx.creates && status !== 401 && status !== 403 && IMAGE_UNAVAILABLE.test(said)) {
    const image = ctx.image ? `"${ctx.image}" ` : '';
    return `The image ${image}could not be fetched, so nothing was created${who} (${status}: ${said}). Call create_container again with an image the server already has locally${/local (images|aliases)/i.test(said) ? ' (the daemon names them)' : ', such as a local alias'}, or ask the server's administrator to let the daemon reach the image server.`;
  }
  if (status === 401) {
    let expiry: Date | undefined;
    try {
      expiry = ctx.token.expiresAt();
    } catch {
      // A token file that cannot be read now: the daemon's own words still say what went wrong.
    }
    if ((expiry && expiry.getTime() <= Date.now()) || /expired/i.test(said)) {
      const when = expiry ? ` at ${expiry.toISOString()}` : '';
      return `The API token expired${when}. Generate a new one with \`containarium token generate\` and update ${ctx.token.origin}.`;
    }
    return `The daemon rejected the API token (401: ${said || 'invalid token'}). It was probably signed with a different secret than the daemon's, or is malformed; generate a new token with \`containarium token generate\` using the daemon's secret and update ${ctx.token.origin}.`;
  }
  if (status === 403 && /quota exceeded/i.test(said)) {
    return `The daemon refused to ${ctx.action}: ${said} (403). Call get_quota to see the quota and what is used of it.`;
  }
  if (status === 403) {
    const denied = `The API token is not allowed to ${ctx.action} (403: ${said || 'forbidden'}).`;
    const claims = tokenClaims(ctx.token);
    if (!claims || claims.roles?.includes('admin')) {
      return `${denied} The daemon refuses it even with the admin role; ask the server's administrator what this token may do.`;
    }
    // Never a hint to escalate: a user's token is meant for that user's container.
    const owner = claims.username ?? 'its user';
    return `${denied} It is the token of user ${owner}, without the admin role, so it may act only on ${owner}'s container (and list and metrics show only that one).`;
  }
  if (status === 429) {
    // The daemon counts failures per address, per network and overall, and does not say which tripped.
    return `The daemon is refusing requests with a bad token for a while, after repeated failed logins (429) from this client, its network or anywhere. Fix the token, then retry in a minute.`;
  }
  // v0.3 daemons report a missing container as a 500 saying "Instance not found"; other things
  // (an image, a key) can be "not found" too, and a create never finds its container missing.
  const missing = status === 404 || (status === 500 && CONTAINER_MISSING.test(said));
  const resource = ctx.resource;
  if (missing && resource && ctx.username && !ctx.creates) {
    return `No ${resource.noun} exists${who}. Call ${resource.list} to see which ${resource.plural ?? `${resource.noun}s`} exist.`;
  }
  if (status === 404) {
    return `The daemon at ${ctx.serverUrl} has no such route (404: ${said}). Check that CONTAINARIUM_SERVER_URL points at a Containarium daemon.`;
  }
  if (status === 409 && /\bbusy\b/i.test(said)) {
    return `The ${resource?.noun ?? 'container'}${who} is busy with another operation, so the daemon could not ${ctx.action} (${said}). Wait a few seconds and call the tool again.`;
  }
  if (resource && (status === 409 || /already exists|already in progress/i.test(said))) {
    return describeConflict(status, said, resource, who, ctx);
  }
  if (/not implemented/i.test(said)) {
    return `This daemon cannot ${ctx.action}: it says "${said}" (older upstream daemons lack this operation). Upgrade the Containarium daemon.`;
  }
  if (status === 400) {
    return `The daemon rejected the request to ${ctx.action} as invalid: ${said || 'bad request'}. Correct the arguments and try again.`;
  }
  if (status === 503 && /shutting down/i.test(said)) {
    return `The daemon is shutting down, so it could not ${ctx.action} (503: ${said}). Retry once the daemon is back; if it stays down, ask the server's administrator to start it again.`;
  }
  // Only a 503 about Incus blames Incus: a daemon can be unavailable for its own reasons.
  if (status === 503 && /\bincus\b|container backend/i.test(said)) {
    return `The daemon could not reach its container backend while trying to ${ctx.action} (503: ${said || 'unavailable'}). Check that Incus is running on the server, then retry.`;
  }
  if (status === 503) {
    return `The daemon is unavailable and could not ${ctx.action} (503${said ? `: ${said}` : ''}). Retry in a moment, or check the daemon's logs.`;
  }
  return `The daemon failed to ${ctx.action} (HTTP ${status}${said ? `: ${said}` : ''}). Retry, or check the daemon's logs.`;
}

/**
 * This daemon's words for an instance of the container's name that it did not make: get and
 * delete cannot see it, so only another name or the Incus administrator can help.
 */
const FOREIGN = /not made by this daemon|does not manage|not managed by/i;
/** A create still running, in this daemon's words and upstream HEAD's. */
const STILL_CREATING = /still being created|creation already in progress/i;

/** A conflict: the daemon's own words decide the next step, never a guess that it "exists". */
function describeConflict(
  status: number,
  said: string,
  resource: Resource,
  who: string,
  ctx: FailureContext,
): string {
  const show = resource.show ?? resource.list;
  const forUser = ctx.username ? ` for ${ctx.username}` : '';
  if (FOREIGN.test(said)) {
    const unseen = [resource.show, resource.remove].filter(Boolean).join(' and ');
    return `The daemon could not ${ctx.action} (${status}: ${said}). ${unseen ? `${unseen} cannot see that instance, so c` : 'C'}hoose another username, or ask the server's administrator to rename or remove it in Incus.`;
  }
  if (STILL_CREATING.test(said)) {
    return `The ${resource.noun}${who} is still being created, so the daemon could not ${ctx.action} (${status}: ${said}). Wait until it is ready: call ${show}${forUser} to follow it, then try again.`;
  }
  if (/\bexists\b/i.test(said)) {
    const next =
      resource.show && resource.remove
        ? `Call ${resource.show} to inspect it, or ${resource.remove} first if it should be replaced.`
        : `Call ${resource.list} to see it.`;
    const article = resource.article ?? 'a';
    // Anything the daemon adds (why an earlier create failed) is passed on.
    const why = /already exists \((.+)\)$/i.exec(said)?.[1];
    return `${article[0]!.toUpperCase()}${article.slice(1)} ${resource.noun}${who} already exists${why ? ` (${why})` : ''}. ${next}`;
  }
  return `The daemon refused to ${ctx.action} because of a conflict (${status}${said ? `: ${said}` : ''}). Call ${show}${forUser} to see the ${resource.noun}'s current state, then try again.`;
}

function describeNetwork(error: unknown, ctx: FailureContext): string {
  const cause = error as { code?: string; message?: string } | undefined;
  const code = cause?.code ?? '';
  const text = `${code} ${cause?.message ?? ''}`;
  if (/ECONNREFUSED|ConnectionRefused|Unable to connect/i.test(text)) {
    return `The Containarium daemon is not reachable at ${ctx.serverUrl} (connection refused). Start it with \`containarium daemon --rest\`, or fix the port in CONTAINARIUM_SERVER_URL.`;
  }
  if (/ENOTFOUND|EAI_AGAIN|DNS/i.test(text)) {
    return `The host in CONTAINARIUM_SERVER_URL (${ctx.serverUrl}) cannot be resolved. Check the host name.`;
  }
  if (/CERT|certificate|SSL|TLS|self.signed/i.test(text)) {
    return `The TLS certificate of ${ctx.serverUrl} is not trusted (${code || cause?.message}). If the server uses a private CA, set CONTAINARIUM_CA_CERT to its PEM file.`;
  }
  return `The Containarium daemon at ${ctx.serverUrl} could not be reached (${(code || cause?.message || 'network error').trim()}). Check that it is running and that CONTAINARIUM_SERVER_URL is right.`;
}
