// Where the benchmark finds things: the repository root (every command runs
// from there) and the Deno binary that runs the driver, the load generators and
// the Deno servers under test.

/** The repository root, without a trailing slash. */
export const ROOT: string = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

/** The Deno executable running this driver. */
export const DENO: string = Deno.execPath();
