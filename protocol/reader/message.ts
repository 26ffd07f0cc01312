/** What a reader hands its handler: a delivery, or a message read from the stream leader. */
import type { MsgHdrs } from "@nats-io/transport-node";

/** A stored message as a reader handles it: what a consumer's delivery and a message read by sequence share. */
export interface StreamMessage {
  subject: string;
  data: Uint8Array;
  headers?: MsgHdrs;
  info: { stream: string; streamSequence: number; deliveryCount: number };
}
