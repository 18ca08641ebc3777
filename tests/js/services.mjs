// Discovers the NATS services on the server at argv[2] with the official services client
// (@nats-io/services: ADR-32 PING/INFO/STATS, as `nats micro` does) and prints what it
// found, one JSON document: [{name, id, version, metadata, endpoints, stats}].
import { connect } from "@nats-io/transport-node";
import { Svcm } from "@nats-io/services";

const nc = await connect({ servers: process.argv[2] });
const client = new Svcm(nc).client({ maxWait: 2000 });
const found = new Map();
for await (const info of await client.info()) {
  found.set(info.id, { ...info, stats: null });
}
for await (const stats of await client.stats()) {
  const s = found.get(stats.id);
  if (s) s.stats = stats;
}
console.log(JSON.stringify([...found.values()]));
await nc.close();
