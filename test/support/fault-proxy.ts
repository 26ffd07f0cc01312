/**
 * A real HTTP proxy in front of a real model server that can misbehave on demand: answer 429 or
 * 503 for the next requests, drop connections (a server that is down), or answer judge requests
 * with text no score can be read from. Everything it forwards reaches the real server untouched.
 */
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export interface FaultProxy extends AsyncDisposable {
  /** `http://127.0.0.1:PORT/v1` */
  baseUrl: string;
  /** Answer the next `count` chat requests with this status (and optional headers) instead of forwarding. */
  failNext(count: number, status: number, headers?: Record<string, string>): void;
  /** While true, chat requests get their connection destroyed (the server looks down). */
  down: boolean;
  /** While true, judge requests get a 200 completion whose text holds no score and no logprobs. */
  garbageJudgements: boolean;
  /** Chat requests seen (forwarded or not). */
  chats: number;
  close(): Promise<void>;
}

export async function startFaultProxy(target: string): Promise<FaultProxy> {
  const faults: { status: number; headers: Record<string, string> }[] = [];
  let server: Server;
  const proxy: FaultProxy = {
    baseUrl: "",
    down: false,
    garbageJudgements: false,
    chats: 0,
    failNext(count, status, headers = {}) {
      for (let i = 0; i < count; i++) faults.push({ status, headers });
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
    [Symbol.asyncDispose]: () => proxy.close(),
  };
  server = createServer(async (req, res) => {
    const body = await read(req);
    const isChat = req.url?.endsWith("/chat/completions") ?? false;
    if (isChat) {
      proxy.chats++;
      if (proxy.down) return req.socket.destroy();
      const fault = faults.shift();
      if (fault) {
        res.writeHead(fault.status, { "content-type": "application/json", ...fault.headers });
        return res.end(
          JSON.stringify({ object: "error", message: `injected ${fault.status}`, type: "ServiceUnavailableError", param: null, code: fault.status }),
        );
      }
      if (proxy.garbageJudgements && body.includes("<answer>")) {
        res.writeHead(200, { "content-type": "application/json" });
        return res.end(
          JSON.stringify({
            id: "chatcmpl-garbage",
            object: "chat.completion",
            created: 0,
            model: "x",
            choices: [{ index: 0, message: { role: "assistant", content: "What a lovely picture!" }, logprobs: null, finish_reason: "stop" }],
          }),
        );
      }
    }
    const upstream = await fetch(`${target}${req.url}`, {
      method: req.method,
      headers: { "content-type": "application/json" },
      body: req.method === "GET" ? undefined : body,
    });
    res.writeHead(upstream.status, { "content-type": upstream.headers.get("content-type") ?? "application/json" });
    res.end(Buffer.from(await upstream.arrayBuffer()));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  proxy.baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  return proxy;
}

function read(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}
