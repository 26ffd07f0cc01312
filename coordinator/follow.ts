/**
 * Following a stream from its start under the admission policy (protocol/admit.ts): each
 * admitted message goes to the handler; each refused one is dead-lettered with its reason and
 * logged, never counted. The coordinator replays its streams this way on every start.
 */
import { DeliverPolicy, jetstream, type ConsumerMessages } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { admit, deadLetter, type MessageOf, type MessageType, type Roster } from "../protocol/mod.ts";

export interface FollowOptions<K extends MessageType> {
  nc: NatsConnection;
  stream: string;
  filter: string;
  types: K[];
  /** Who may speak; others are dead-lettered as not_member. */
  roster?: Roster;
  /** The consumer name dead letters carry. */
  as: string;
  log: Logger;
  handle: (message: MessageOf<K>) => Promise<void> | void;
}

/** Starts following; resolves once the consumer exists. Close the returned messages to stop. */
export async function followAdmitted<K extends MessageType>(o: FollowOptions<K>): Promise<ConsumerMessages> {
  const js = jetstream(o.nc);
  const consumer = await js.consumers.get(o.stream, { filter_subjects: o.filter, deliver_policy: DeliverPolicy.All });
  const messages = await consumer.consume({ expires: 5000 });
  (async () => {
    for await (const m of messages) {
      const a = admit(m.subject, m.data, o.types, o.roster);
      if (!a.ok) {
        // This consumer does not redeliver, so a dead letter that fails to publish is tried again here.
        for (let attempt = 1; ; attempt++) {
          try {
            await deadLetter(js, m, a, o.as);
            break;
          } catch (error) {
            if (attempt >= 5) {
              o.log.error({ err: error, subject: m.subject }, "could not dead-letter a message; it is not counted");
              break;
            }
            await new Promise((r) => setTimeout(r, 1000 * attempt));
          }
        }
        o.log.warn({ subject: m.subject, reason: a.reason, detail: a.detail }, "not counted: dead-lettered");
        continue;
      }
      await o.handle(a.message);
    }
  })().catch((error) => o.log.error({ err: error, stream: o.stream }, "stream follower ended"));
  return messages;
}
