// Files the server reads beside its code, found from one place: the checkout's root when it
// runs from server/ (tsx, tests), dist/ when it runs from dist/server/ (npm start), where the
// build copies the spec and the console. Every module of the bundled server sits directly in
// dist/server/, whatever folder its source was in, so paths are never taken from their own URL.
import { fileURLToPath } from "node:url";

const ROOT = new URL("../", import.meta.url);

/** A path below that root, e.g. `fromRoot("generated/openapi.json")`. */
export const fromRoot = (relative: string): string => fileURLToPath(new URL(relative, ROOT));
