/**
 * A TCP link between a site and its hub that a test can cut and heal: while cut, every open
 * connection through it is destroyed and new ones are refused, as when a site's uplink drops.
 * Bytes pass through untouched otherwise.
 */
import { createServer, connect as tcpConnect, type Server, type Socket } from "node:net";
import type { AddressInfo } from "node:net";

export interface LinkProxy {
  /** host:port to dial instead of the target. */
  address: string;
  cut(): void;
  heal(): void;
  readonly isCut: boolean;
  close(): Promise<void>;
}

export async function startLinkProxy(targetPort: number, targetHost = "127.0.0.1"): Promise<LinkProxy> {
  const open = new Set<Socket>();
  let cut = false;
  const server: Server = createServer((client) => {
    if (cut) return client.destroy();
    const upstream = tcpConnect(targetPort, targetHost);
    open.add(client).add(upstream);
    const end = () => {
      client.destroy();
      upstream.destroy();
      open.delete(client);
      open.delete(upstream);
    };
    client.on("error", end).on("close", end);
    upstream.on("error", end).on("close", end);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  return {
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    get isCut() {
      return cut;
    },
    cut() {
      cut = true;
      for (const s of open) s.destroy();
      open.clear();
    },
    heal() {
      cut = false;
    },
    close: () =>
      new Promise<void>((r) => {
        for (const s of open) s.destroy();
        server.close(() => r());
      }),
  };
}
