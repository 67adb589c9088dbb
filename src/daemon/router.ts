// Routes and how a request finds one: a route is a method, a path pattern and a handler that gets
// the backend, the caller and the parsed request, and returns the JSON body of a 200.
import type { Principal } from './auth.ts';
import { authorizeUser } from './auth.ts';
import type { Backend } from './backend.ts';
import type { QuotaTable } from './quotas.ts';
import { parseUsername } from './requests.ts';
import type { Templates } from './templates.ts';

export type Context = {
  backend: Backend;
  request: Request;
  url: URL;
  /** Path parameters, still URL-encoded. */
  params: Record<string, string>;
  principal: Principal;
  /** Per-user quotas for callers without the admin role (--quota-file). */
  quotas: QuotaTable;
  /** The create templates (--templates and the built-ins). */
  templates: Templates;
  /** The request body as JSON; an empty body is `{}`. */
  body(): Promise<unknown>;
};

export type Route = {
  method: string;
  /** Literal segments, ":name" for one segment, "*name" for the rest of the path. */
  segments: string[];
  handle(context: Context): Promise<unknown>;
  /**
   * A change that may run for minutes (create, start, stop, delete, SSH keys): once its body is
   * in, its connection has no idle cut-off. Reads keep the server's idle timeout, so a client
   * that stops reading an answer cannot hold its connection.
   */
  long: boolean;
};

/** A route for `METHOD /v1/path/:param`; `long` for a change that may run for minutes. */
export const route = (
  method: string,
  path: string,
  handle: Route['handle'],
  options: { long?: boolean } = {},
): Route => ({
  method,
  segments: path.split('/').slice(1),
  handle,
  long: options.long ?? false,
});

/** The `:username` path parameter, checked, and the caller allowed to act on it. */
export function pathUser(c: Context): string {
  const username = parseUsername(c.params.username ?? '');
  authorizeUser(c.principal, username);
  return username;
}

export type Match =
  | { route: Route; params: Record<string, string> }
  | { allowed: string[] }
  | undefined;

/** The route for this method and path; else the methods the path allows; else undefined. */
export function matchRoute(routes: readonly Route[], method: string, pathname: string): Match {
  const parts = pathname.split('/').slice(1);
  const allowed: string[] = [];
  for (const route of routes) {
    const params: Record<string, string> = {};
    let matched = true;
    for (let i = 0; i < route.segments.length; i++) {
      const segment = route.segments[i] as string;
      const part = parts[i];
      if (segment.startsWith('*')) {
        // The rest of the path, so a key whose "/" was left unencoded still arrives whole.
        const rest = parts.slice(i).join('/');
        if (rest === '') matched = false;
        else params[segment.slice(1)] = rest;
        break;
      }
      if (
        part === undefined ||
        (i === route.segments.length - 1 && parts.length !== route.segments.length)
      ) {
        matched = false;
        break;
      }
      if (segment.startsWith(':')) {
        if (part === '') {
          matched = false;
          break;
        }
        params[segment.slice(1)] = part;
      } else if (segment !== part) {
        matched = false;
        break;
      }
    }
    if (!matched) continue;
    if (route.method === method) return { route, params };
    allowed.push(route.method);
  }
  return allowed.length > 0 ? { allowed } : undefined;
}
