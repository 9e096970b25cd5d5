/**
 * What the test suite needs on the machine beyond Deno, and where each comes from: the one place
 * to add a tool. `deno task test` installs every missing one before the tests run; the test
 * fixtures call {@link ensureTool} for the one they need, so a single test file run on its own
 * gets it too. Only the npm registry and Debian's archive are used; Debian packages only when
 * running as root with apt-get, otherwise the error names the command to run.
 *
 * ```ts ignore
 * await ensureTool("redis-server"); // installs it if missing and allowed, else throws with the hint
 * ```
 *
 * @module
 */

/** One tool: how to see it is there, and how to get it. */
export interface Tool {
  /** Commands that must all succeed when the tool is installed. */
  check: string[][];
  /** Where it comes from. */
  from: "npm" | "npx" | "debian";
  /**
   * npm: `npm install -g` arguments tried in turn; npx: `npx -y` arguments that fetch it into
   * npm's cache (nothing installed globally); debian: the packages.
   */
  install: string[][] | string[];
  /** The command a person runs to install it. */
  hint: string;
}

/** Every tool the tests use, by name. Add a line here to add one. */
export const TOOLS = {
  bun: {
    check: [["bun", "--version"]],
    from: "npm",
    // The bun package fetches its binary in an install script, which newer npm runs only when
    // allowed.
    install: [["bun"], ["--allow-scripts=bun", "bun"]],
    hint: "npm install -g bun",
  },
  // Node.js >= 22.18 runs dback's .ts files; an older system node is left alone and node@24 is
  // run from npm's cache instead (tests/_fixtures/runtimes.ts finds the binary). npx cannot ask
  // its cache without the registry, so the check is the fetch itself (a no-op once cached).
  node: {
    check: [[
      "bash",
      "-c",
      `node -e 'const [a, b] = process.versions.node.split(".").map(Number);
        process.exit(a > 22 || (a === 22 && b >= 18) ? 0 : 1)' 2>/dev/null ||
        npx -y node@24 --version`,
    ]],
    from: "npx",
    install: [["node@24", "--version"]],
    hint: "npx -y node@24 --version (or install Node.js >= 22.18)",
  },
  "redis-server": {
    check: [["redis-server", "--version"]],
    from: "debian",
    install: ["redis-server"],
    hint: "apt-get install -y redis-server",
  },
  nginx: {
    check: [["nginx", "-v"], ["openssl", "version"]],
    from: "debian",
    install: ["nginx", "openssl"],
    hint: "apt-get install -y nginx openssl",
  },
  chromium: {
    check: [["chromium", "--version"]],
    from: "debian",
    install: ["chromium"],
    hint: "apt-get install -y chromium",
  },
} satisfies Record<string, Tool>;

/** A tool's name. */
export type ToolName = keyof typeof TOOLS;

async function runs(cmd: string[]): Promise<boolean> {
  try {
    const out = await new Deno.Command(cmd[0], {
      args: cmd.slice(1),
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).output();
    return out.success;
  } catch {
    return false;
  }
}

async function present(tool: Tool): Promise<boolean> {
  for (const cmd of tool.check) if (!(await runs(cmd))) return false;
  return true;
}

const pending = new Map<string, Promise<"present" | "installed">>();

/**
 * Make sure `name` is installed: install it when missing and possible, else throw an error that
 * names the command to run. Resolves `"installed"` when it had to install it.
 */
export function ensureTool(name: ToolName): Promise<"present" | "installed"> {
  let p = pending.get(name);
  if (!p) {
    p = (async () => {
      const tool: Tool = TOOLS[name];
      if (await present(tool)) return "present";
      if (tool.from === "npm" || tool.from === "npx") {
        console.error(`${name} missing: installing it from npm (${tool.hint})`);
        for (const args of tool.install as string[][]) {
          await runs(
            tool.from === "npm" ? ["npm", "install", "-g", ...args] : ["npx", "-y", ...args],
          );
          if (await present(tool)) return "installed";
        }
      } else if (Deno.uid?.() === 0 && await runs(["apt-get", "--version"])) {
        const packages = (tool.install as string[]).join(" ");
        console.error(`${name} missing: installing it from Debian (apt-get install ${packages})`);
        await runs([
          "bash",
          "-c",
          `apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${packages}`,
        ]);
        if (await present(tool)) return "installed";
      }
      throw new Error(`${name} is not installed; install it with: ${tool.hint}`);
    })();
    pending.set(name, p);
  }
  return p;
}
