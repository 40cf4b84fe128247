// A LiteCancel that also answers as an AbortSignal, made only when something asks for one (an
// SDK client's request, AbortSignal.any): the gateway's per-call cancellations and deadlines,
// which on the hot path (a direct tools/call) are only listened to as LiteCancels. On Node 20
// an AbortController with a listener costs about 5 µs, more than the rest of such a call's own
// cancellation bookkeeping.
import { LiteCancel } from "./guarded-fetch.js";

export class LiteController extends LiteCancel {
  #signal: AbortSignal | null = null;

  /** An AbortSignal that aborts with this, with the same reason (already aborted if this is). */
  get signal(): AbortSignal {
    if (this.#signal === null) {
      const controller = new AbortController();
      this.#signal = controller.signal;
      if (this.aborted) controller.abort(this.reason);
      else this.addEventListener("abort", () => controller.abort(this.reason));
    }
    return this.#signal;
  }
}

/** An agent's or a deadline's cancellation, as the gateway passes it along. */
export type CallSignal = AbortSignal | LiteController;

/** The AbortSignal an SDK request takes for `s`. */
export const abortSignalOf = (s: CallSignal): AbortSignal => (s instanceof LiteController ? s.signal : s);
