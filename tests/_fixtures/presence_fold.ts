import assert from "node:assert/strict";
// What a client does with a `presence` frame (PROTOCOL.md, step 3), for tests that check a
// viewer's view (its `server-join` users, then every presence frame after it) against the truth.

/** A viewer's users, as in the `server-join` frame. */
export type View = Record<
  string,
  { uid: string; username: string; status: string; roleColor: string }
>;

/** Apply one presence frame (its JSON text) to `view`, as the client does. */
export function fold(view: View, frame: string): void {
  const f = JSON.parse(frame);
  if (f.type !== "presence") throw new Error(`not a presence frame: ${frame.slice(0, 80)}`);
  const d = f.data;
  const key = Object.keys(view).find((k) => view[k].uid === d.uid);
  if (d.delete) {
    if (key !== undefined) delete view[key];
  } else if (key !== undefined) {
    const u = view[key];
    view[key] = {
      uid: u.uid,
      username: d.username ?? u.username,
      status: d.status,
      roleColor: d.roleColor ?? u.roleColor,
    };
  } else if (d.username !== undefined) {
    view[d.uid] = {
      uid: d.uid,
      username: d.username,
      status: d.status,
      roleColor: d.roleColor ?? "#ffffff",
    };
  }
}

/** `fold`, refusing a frame the client could not draw (an unknown uid without a name). */
export function drawable(view: View, frame: string): void {
  const d = JSON.parse(frame).data;
  if (!d.delete && !Object.values(view).some((u) => u.uid === d.uid)) {
    assert.ok(d.username !== undefined, `a nameless frame for a user the viewer lacks: ${frame}`);
  }
  fold(view, frame);
}
