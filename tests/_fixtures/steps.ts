// Cases that mostly wait (fixed windows, back-offs, faults), each with processes of its own, run
// at once as concurrent steps of one test: the suite waits out their windows once, not once each.

/** One concurrent case: its step name, its body, and whether it is reported ignored. */
export interface StepCase {
  name: string;
  fn: () => Promise<void>;
  ignore?: boolean;
}

/** Run every case at once as a step of `t`; a failed step fails `t`, the others still finish. */
export async function stepsAtOnce(t: Deno.TestContext, cases: StepCase[]): Promise<void> {
  // Steps run concurrently only without the sanitizers (which watch the whole process).
  const off = { sanitizeOps: false, sanitizeResources: false, sanitizeExit: false };
  await Promise.all(cases.map((c) => t.step({ ...c, ignore: c.ignore ?? false, ...off })));
}
