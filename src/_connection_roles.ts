/**
 * What a connection needs from the layers around it: the protocol handler
 * that answers its frames, and the owner of its place in rooms and limits.
 *
 * @module
 */
import type { ConnectRequest } from "./_client_frames.ts";
import type { Connection } from "./_connection.ts";

/** What a connection asks of the protocol layer. */
export interface ConnectionHandler {
  /** Runs first, before any client frame is handled (sends the server list); `undefined`: done. */
  open(conn: Connection): Promise<void> | undefined;
  /** A parsed `connect` request. Requests of one connection run one at a time, in order. */
  connect(conn: Connection, request: ConnectRequest): Promise<void> | undefined;
}

/** Who owns the connection's place in rooms and limits. */
export interface ConnectionOwner {
  /** The connection will send nothing more: take it out of its room. */
  leave(conn: Connection): void;
  /** The socket is really gone (or never opened): free its place in the limits. */
  release(conn: Connection): void;
}
