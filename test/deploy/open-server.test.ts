/** The start-up warning for a server without credentials that other machines can reach (deploy/cli/open-server.ts). */
import { describe, expect, it } from "vitest";
import { onLoopback, openServerWarning } from "../../deploy/cli/open-server.ts";

describe("the open-server warning", () => {
  it("warns without credentials off loopback, and only then", () => {
    expect(openServerWarning({ servers: "nats://10.0.0.5:4222", auth: {} })).toMatch(/trusts every client.*pop creds/);
    expect(openServerWarning({ servers: "nats://127.0.0.1:4222,nats://hub.example:4222", auth: {} })).toBeDefined();
    expect(openServerWarning({ servers: "nats://127.0.0.1:4222", auth: {} })).toBeUndefined();
    expect(openServerWarning({ servers: "nats://10.0.0.5:4222", auth: { nkey: "/k.nk" } })).toBeUndefined();
    expect(openServerWarning({ servers: "nats://10.0.0.5:4222", auth: { user: "a", password: "b" } })).toBeUndefined();
    expect(["localhost:4222", "nats://[::1]:4222", "127.0.0.2", "nats://LOCALHOST"].every(onLoopback)).toBe(true);
    expect(["nats://localhost.evil.com:4222", "nats://0.0.0.0:4222", "tls://[fe80::1]:4222"].some(onLoopback)).toBe(false);
  });
});
