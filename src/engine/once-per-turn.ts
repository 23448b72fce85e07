// Batching by turn: work asked for many times in one synchronous run is done once, on the next microtask, so all
// that was queued meanwhile joins it (a group commit, a cluster proposal, a change-feed notification).

/** Answers a function that schedules `run` for the next microtask, once however often it is called before then. */
export function oncePerTurn(run: () => void): () => void {
  let scheduled = false;
  return () => {
    if (scheduled) return;
    scheduled = true;
    queueMicrotask(() => {
      scheduled = false;
      run();
    });
  };
}
