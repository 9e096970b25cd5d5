// The event table is the one place a server-to-client event is defined: every row round-trips
// schema -> frame -> what the d-zone client reads, is documented in PROTOCOL.md, is accepted by
// the cluster's envelope check with the same schema, and travels source -> sink -> broker ->
// viewer with its origin. A new row without a sample here fails the first test.
import assert from "node:assert/strict";
import {
  type Broker,
  type DataSource,
  type Deliver,
  ERRORS,
  type EventSink,
  type ServerEvent,
  WebSocketServer,
} from "../../mod.ts";
import { EVENT_TYPES, EVENTS, frameOf, serverEventSchema } from "../../src/events.ts";
import { parseEnvelope } from "../../src/redis/_room.ts";
import { LocalBroker } from "../../src/broker.ts";
import { joined, startServer } from "../_fixtures/helpers.ts";

const SERVER = "100000000000000001";

/** One full sample per event type (every optional field set). */
const SAMPLES: { [K in ServerEvent["type"]]: Extract<ServerEvent, { type: K }> } = {
  presence: {
    type: "presence",
    event: {
      server: SERVER,
      uid: "7",
      status: "dnd",
      username: "ada",
      roleColor: "#00ff00",
      delete: true,
    },
  },
  message: {
    type: "message",
    event: { server: SERVER, uid: "7", message: 'hello \u2028 "there"', channel: "9" },
  },
  "update-clientid": { type: "update-clientid", event: { server: SERVER, clientId: "1234" } },
  "server-gone": { type: "server-gone", event: { server: SERVER } },
};

/**
 * What the d-zone client reads from a frame, written from PROTOCOL.md (not from the builders):
 * broadcasts carry `server` and their fields in `data`; an error carries `data.message`.
 */
function clientRead(frame: string): { type: string; server?: string; fields: object } {
  const f = JSON.parse(frame);
  assert.equal(typeof f.type, "string");
  assert.equal(typeof f.data, "object");
  switch (f.type) {
    case "presence": {
      const { uid, status, username, roleColor } = f.data;
      const out: Record<string, unknown> = { uid, status };
      if ("username" in f.data) out.username = username;
      if ("roleColor" in f.data) out.roleColor = roleColor;
      if (f.data.delete === true) out.delete = true;
      return { type: f.type, server: f.server, fields: out };
    }
    case "message":
      return {
        type: f.type,
        server: f.server,
        fields: { uid: f.data.uid, message: f.data.message, channel: f.data.channel },
      };
    case "update-clientid":
      return { type: f.type, server: f.server, fields: { clientId: f.data.clientId } };
    case "error":
      return { type: f.type, fields: { message: f.data.message } };
  }
  throw new Error(`the client does not know frames of type ${f.type}`);
}

Deno.test("event table: every row has a sample, and each round-trips schema -> frame -> client", () => {
  assert.deepEqual([...EVENT_TYPES].sort(), Object.keys(SAMPLES).sort());
  for (const type of EVENT_TYPES) {
    const sample = SAMPLES[type];
    const checked = serverEventSchema.parse(sample);
    assert.deepEqual(checked, sample, `${type}: the schema keeps every field`);
    const read = clientRead(frameOf(checked));
    const { server, ...fields } = sample.event as { server: string };
    if (type === "server-gone") {
      assert.deepEqual(read, { type: "error", fields: { message: ERRORS.noSuchServer } });
    } else {
      assert.equal(read.type, type);
      assert.equal(read.server, server);
      assert.deepEqual(read.fields, fields, type);
    }
    assert.equal(EVENTS[type].metric, type, "the metric label is the type");
  }
  // Optional presence fields stay out of the frame when not given (the client treats a key as a change).
  const bare = JSON.parse(EVENTS.presence.frame({ server: SERVER, uid: "7", status: "idle" }));
  assert.deepEqual(bare.data, { uid: "7", status: "idle" });
});

Deno.test("event table: every broadcast frame type is documented in PROTOCOL.md", async () => {
  const doc = await Deno.readTextFile(new URL("../../docs/PROTOCOL.md", import.meta.url));
  for (const type of EVENT_TYPES) {
    const wire = JSON.parse(frameOf(SAMPLES[type])).type;
    assert.ok(doc.includes(`"type": "${wire}"`), `PROTOCOL.md shows no ${wire} frame`);
  }
});

Deno.test("event table: the cluster checks events with the same schema", () => {
  for (const type of EVENT_TYPES) {
    const ev = SAMPLES[type];
    const ok = parseEnvelope(JSON.stringify({ s: 1, e: 1, k: "src", ev }));
    assert.ok(ok.ok, `${type} refused by the cluster`);
    assert.deepEqual(ok.value.ev, ev);
    // What the table's schema refuses, the cluster refuses too.
    const bad = { ...ev, event: { ...ev.event, server: "" } };
    assert.equal(serverEventSchema.safeParse(bad).success, false);
    assert.equal(parseEnvelope(JSON.stringify({ s: 1, e: 1, k: "src", ev: bad })).ok, false);
  }
  const unknown = { type: "kick", event: { server: SERVER } };
  assert.equal(parseEnvelope(JSON.stringify({ s: 1, e: 1, k: "lib", ev: unknown })).ok, false);
});

Deno.test("every event type goes source -> sink -> broker -> viewer; origins say who sent it", async () => {
  let sink: EventSink | undefined;
  const source: DataSource = {
    getServerData: () => ({ [SERVER]: { id: "home", name: "Home", default: true } }),
    getUserData: () => ({ "7": { username: "ada", status: "online" } }),
    start: (s) => void (sink = s),
  };
  const local = new LocalBroker();
  const origins: string[] = [];
  const broker: Broker = {
    open: (d: Deliver) => local.open(d),
    publish: (e, origin) => {
      origins.push(`${origin}:${e.type}`);
      return local.publish(e, origin);
    },
    watch: () => {},
    close: () => local.close(),
  };
  await using s = await startServer({ source, broker });
  await using viewer = await joined(s.url, "home");
  for (const type of EVENT_TYPES) sink!.emit(SAMPLES[type]);
  for (const type of EVENT_TYPES) {
    const expected = JSON.parse(frameOf(SAMPLES[type]));
    assert.deepEqual(await viewer.next(), expected, type);
  }
  assert.equal(s.server.broadcast({ type: "message", event: SAMPLES.message.event }), 0);
  assert.deepEqual(origins, [...EVENT_TYPES.map((t) => `source:${t}`), "library:message"]);
  const counted = s.server.metrics.broadcasts;
  for (const type of EVENT_TYPES) {
    assert.equal(counted[EVENTS[type].metric], type === "message" ? 2 : 1, type);
  }
  // A bad event from a source is logged and dropped, never thrown into the source.
  sink!.emit({ type: "presence", event: { server: SERVER, uid: "7", status: "away" as "idle" } });
  sink!.emit({ type: "kick", event: { server: SERVER } } as unknown as ServerEvent);
  const bad = s.logs.filter((l) => l.message.startsWith("data source sent a bad"));
  assert.deepEqual(bad.map((l) => l.message.split(":")[0]), [
    "data source sent a bad presence",
    "data source sent a bad kick",
  ]);
  assert.equal(origins.length, EVENT_TYPES.length + 1, "nothing bad reached the broker");
});

Deno.test("broadcast(): the table decides what is valid, and the error names the method", () => {
  const server = new WebSocketServer({ logLevel: "silent" });
  assert.throws(
    () => server.broadcast({ type: "kick", event: { server: SERVER } } as unknown as ServerEvent),
    (e) =>
      e instanceof TypeError && /^broadcast: type must be one of presence, message/.test(e.message),
  );
  assert.throws(
    () => server.broadcast({ type: "server-gone", event: { server: "" } }),
    (e) => e instanceof TypeError && e.message.startsWith("broadcast: server: "),
  );
  assert.throws(
    () => server.broadcastPresence({ server: SERVER, uid: "7", status: "away" as "idle" }),
    (e) => e instanceof TypeError && e.message.startsWith("broadcastPresence: status: "),
  );
  for (const type of EVENT_TYPES) assert.equal(server.broadcast(SAMPLES[type]), 0, type);
  assert.equal(server.metrics.broadcasts.presence, 1, "counted only what passed");
});
