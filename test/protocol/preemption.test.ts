/**
 * No message can pre-empt another: a publisher that stores something under the id a peer is
 * about to use does not make the peer's message disappear as a duplicate, while a peer's own
 * republish after a crash still does nothing.
 */
import { jetstream } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  ensureTopology,
  messageIdFor,
  publishMessage,
  publishedIdFor,
  readStored,
  setMessageIdKey,
  STREAMS,
  subjects,
  type MessageOf,
} from "../../protocol/mod.ts";
import { sampleMessages } from "../support/messages.ts";
import { cleanup, connectTo, startServer } from "../support/nats.ts";

describe("message ids", () => {
  let nc: NatsConnection;
  beforeAll(async () => {
    nc = await connectTo((await startServer()).url);
    await ensureTopology(nc);
  });
  afterEach(() => setMessageIdKey(undefined));
  afterAll(cleanup);

  it("signed by the publisher's credential cannot be taken first by anyone else, and republishing stays idempotent", async () => {
    const js = jetstream(nc);
    const alice = { ...sampleMessages().find((m) => m.type === "candidates")!, experiment: "pre" } as MessageOf<"candidates">;
    // Mallory knows the message's logical id and any id she can compute with her own key.
    setMessageIdKey(Buffer.from("mallory's credential"));
    const guesses = [messageIdFor(alice), publishedIdFor(alice)];
    for (const [i, msgID] of guesses.entries()) {
      await js.publish(subjects.candidates("pre", 1, "mallory"), new Uint8Array([i]), { msgID });
    }
    setMessageIdKey(Buffer.from("alice's credential"));
    expect(guesses).not.toContain(publishedIdFor(alice));
    const first = await publishMessage(js, alice);
    expect(first.duplicate).toBe(false);
    const again = await publishMessage(js, alice); // a republish after a crash
    expect(again.duplicate).toBe(true);
    const stored = await readStored(nc, STREAMS.candidates.name, subjects.candidates("pre", 1, alice.author), "candidates");
    expect(stored.messages).toHaveLength(1);
  });
});
