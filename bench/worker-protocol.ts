// The child side of runWorker(): receive one job over IPC, answer once, exit; die with the parent.

export function serveOneJob<TJob, TResult>(handler: (job: TJob) => Promise<TResult>): void {
  if (typeof process.send !== 'function') {
    process.stderr.write('this script is a benchmark worker; run it through dist/bench/run.js\n');
    process.exit(2);
  }
  // An orphaned load generator would keep hammering a port: leave as soon as the orchestrator is gone.
  process.once('disconnect', () => process.exit(1));
  process.once('message', (job) => {
    handler(job as TJob).then(
      (result) => reply({ ok: true, result }, 0),
      (error: unknown) => reply({ ok: false, error: error instanceof Error ? (error.stack ?? error.message) : String(error) }, 1),
    );
  });
}

function reply(message: object, exitCode: number): void {
  process.send!(message, () => process.exit(exitCode));
}
