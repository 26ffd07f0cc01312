/**
 * One reader of the benchmark's raw fan-out run, as a process of its own: a durable consumer of
 * its own on the stream that acknowledges every message (as the actors' inboxes do), and nothing
 * else: no decoding, no handling. Prints `{"read": n}` once it has read `--count` messages.
 *
 *   node --import tsx deploy/bench/load/raw-reader.ts --server URL --stream S --name C --count N
 */
import { AckPolicy, DeliverPolicy } from "@nats-io/jetstream";
import { jetStreamOf, managerOf } from "../../../protocol/mod.ts";
import { Flags } from "../../cli/args.ts";
import { connectNats } from "../../cli/connect.ts";

const flags = new Flags(
  process.argv.slice(2),
  `usage: raw-reader.ts [options]

  --server URL        nats-server
  --stream NAME       stream to read
  --name NAME         the durable consumer's name
  --count N           messages to read before exiting`,
);
const server = flags.string("server")!;
const stream = flags.string("stream")!;
const name = flags.string("name")!;
const count = flags.int("count", { min: 1 })!;
flags.rejectUnknown();

const nc = await connectNats(server, `bench-raw-${name}`);
await (
  await managerOf(nc)
).consumers.add(stream, { durable_name: name, ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.All, max_ack_pending: 10_000 });
const messages = await (await jetStreamOf(nc).consumers.get(stream, name)).consume({ max_messages: 256 });
process.stdout.write("ready\n");
let read = 0;
for await (const m of messages) {
  m.ack();
  if (++read >= count) break;
}
await messages.close();
await nc.close();
process.stdout.write(`${JSON.stringify({ read })}\n`);
