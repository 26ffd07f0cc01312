/**
 * The one-line warning for connecting without credentials to a server other machines can reach.
 * Such a server trusts every client: anyone who reaches it may publish as any peer or the
 * coordinator, and pre-empt message ids (they are signed only with a credential; there is no
 * secret to sign with here). A loopback server is left alone: only this machine reaches it, as
 * with the demo's embedded server.
 */
import type { NatsTarget } from "../ops/nats-options.ts";

/** Whether every server URL names this machine (localhost, 127.0.0.0/8 or ::1). */
export function onLoopback(servers: string): boolean {
  return servers.split(",").every((s) => {
    const host = /^(?:[a-z]+:\/\/)?(\[[^\]]*\]|[^:/]*)/i.exec(s.trim())?.[1]?.toLowerCase() ?? "";
    return host === "localhost" || host === "[::1]" || /^127\.\d+\.\d+\.\d+$/.test(host);
  });
}

/** The warning for `target`, or undefined when it has credentials or is on loopback. */
export function openServerWarning(target: NatsTarget): string | undefined {
  const { nkey, creds, user, tlsCert } = target.auth;
  if (nkey || creds || user || tlsCert || onLoopback(target.servers)) return undefined;
  return `connecting to ${target.servers} without credentials: a server without credentials trusts every client (anyone who reaches it can publish as any peer or the coordinator); a real deployment uses pop creds`;
}
