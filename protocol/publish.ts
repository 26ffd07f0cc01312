/** Publishing a protocol message: validated, with headers, on its subject, deduplicated by id. */
import type { JetStreamClient, PubAck } from "@nats-io/jetstream";
import { encode } from "./codec.ts";
import { headersFor, messageIdFor, subjectFor } from "./envelope.ts";
import { PopError } from "./errors.ts";
import type { Message } from "./schemas.ts";

/** The stream could not store a message (no ack in time, no stream, server gone). */
export class PublishError extends PopError {}

/** Result of a publish: the stream sequence, and whether it was a dropped duplicate. */
export interface Published {
  subject: string;
  seq: number;
  duplicate: boolean;
}

/** Publishes a message to JetStream and waits for the stream's ack. */
export async function publishMessage(js: JetStreamClient, message: Message, options: { timeoutMs?: number } = {}): Promise<Published> {
  const subject = subjectFor(message);
  const data = encode(message);
  let ack: PubAck;
  try {
    ack = await js.publish(subject, data, {
      msgID: messageIdFor(message),
      headers: headersFor(message),
      timeout: options.timeoutMs ?? 10_000,
    });
  } catch (error) {
    throw new PublishError(`could not publish ${message.type} on ${subject}: ${(error as Error).message}`, { cause: error, retryable: true });
  }
  return { subject, seq: ack.seq, duplicate: ack.duplicate };
}
