// Lenient server and user maps: one malformed entry is dropped and named, the
// rest stay usable; only a value that is not a map at all is an error.
import assert from "node:assert/strict";
import {
  lenientServerMapSchema,
  lenientUserMapSchema,
  parseServerMap,
  parseUserMap,
} from "../../src/protocol.ts";

Deno.test("parseServerMap: bad entries are skipped with their reason, good ones kept", () => {
  const { map, skipped } = parseServerMap({
    "1": { id: "dworld", name: "D-World", default: true },
    "2": { id: "", name: "empty id" },
    "3": { id: "nameless" },
    "4": "not an object",
    "5": null,
    "6": { id: "extra", name: "Extra", colour: "dropped field" },
    "7": { id: "pw", name: "PW", passworded: "yes" },
  });
  assert.deepEqual(map, {
    "1": { id: "dworld", name: "D-World", default: true },
    "6": { id: "extra", name: "Extra" },
  });
  assert.equal(skipped.length, 5);
  assert.match(skipped[0], /^"2": id: /);
  assert.match(skipped[1], /^"3": name: /);
  assert.match(skipped[2], /^"4": \(root\): /);
  assert.match(skipped[3], /^"5": \(root\): /);
  assert.match(skipped[4], /^"7": passworded: /);
});

Deno.test("parseUserMap: bad entries are skipped with their reason, good ones kept", () => {
  const users: Record<string, unknown> = {};
  for (let i = 0; i < 1000; i++) users[String(i)] = { username: `u${i}`, status: "online" };
  users["500"] = { username: "bad colour", status: "online", roleColor: "red" };
  users["501"] = { username: "bad status", status: "away" };
  users["502"] = { status: "online" };
  users["503"] = { uid: "", username: "empty uid", status: "online" };
  const { map, skipped } = parseUserMap(users);
  assert.equal(Object.keys(map).length, 996);
  assert.deepEqual(map["499"], { username: "u499", status: "online" });
  assert.equal(map["500"], undefined);
  assert.deepEqual(skipped.map((s) => s.split(":")[0]), ['"500"', '"501"', '"502"', '"503"']);
  assert.match(skipped[0], /roleColor: roleColor must be #rrggbb/);
  assert.match(skipped[1], /^"501": status: /);
  assert.match(skipped[2], /^"502": username: /);
  assert.match(skipped[3], /^"503": uid: /);
});

Deno.test("lenient maps: bad keys are skipped and quoted safely in the reason", () => {
  const long = "x".repeat(5000);
  const hostile = "9\u009b31m\n2026-01-01T00:00:00.000Z ERROR forged";
  const { map, skipped } = parseUserMap({
    [long]: { username: "long key", status: "online" },
    "": { username: "empty key", status: "online" },
    [hostile]: { username: "bad", status: "nope" },
    ["__proto__"]: { username: "proto", status: "idle" },
  });
  // `__proto__` is a valid (if odd) key: it becomes an entry, not the prototype.
  assert.deepEqual(Object.keys(map), ["__proto__"]);
  assert.equal(Object.getPrototypeOf(map), Object.prototype);
  assert.equal(Object.getOwnPropertyDescriptor(map, "__proto__")?.value.username, "proto");
  assert.equal(skipped.length, 3);
  assert.ok(skipped[0].length < 200, "a long key is truncated in the reason");
  assert.match(skipped[0], /^"x{64}…": key must be 1 to 64 characters$/);
  assert.match(skipped[1], /^"": key must be/);
  // No raw newline or C1 control character reaches the log line.
  assert.ok(!/[\n\r\u0080-\u009f]/.test(skipped.join("")), skipped[2]);
  assert.match(skipped[2], /\\u009b/);
  assert.match(skipped[2], /\\n/);
});

Deno.test("lenient maps: a value that is not a map is still an error", () => {
  for (const bad of [null, undefined, 42, "map", [{ id: "a", name: "A" }], true]) {
    assert.throws(() => parseServerMap(bad), TypeError, `server map ${String(bad)}`);
    assert.throws(() => parseUserMap(bad), TypeError, `user map ${String(bad)}`);
    assert.equal(lenientServerMapSchema.safeParse(bad).success, false);
    assert.equal(lenientUserMapSchema.safeParse(bad).success, false);
  }
  assert.throws(() => parseServerMap(null), /server map: \(root\): expected an object/);
  // An empty map, or one where every entry is bad, is a valid (empty) map.
  assert.deepEqual(parseServerMap({}), { map: {}, skipped: [] });
  const allBad = parseUserMap({ "1": {}, "2": [] });
  assert.deepEqual(allBad.map, {});
  assert.equal(allBad.skipped.length, 2);
});

Deno.test("lenient maps: the schemas plug into safeParse like the strict ones", () => {
  const r = lenientServerMapSchema.safeParse({ "1": { id: "a", name: "A" }, "2": {} });
  assert.ok(r.success);
  assert.deepEqual(Object.keys(r.data.map), ["1"]);
  assert.equal(r.data.skipped.length, 1);
});
