// `node --import ./test/helpers/chunk-log.mjs …`: appends the file URL of every *.chunk.js the
// process loads to the file $CHUNK_LOG, one a line (a module-loading hook that changes nothing).
import { appendFileSync } from "node:fs";
import { register } from "node:module";
import { isMainThread } from "node:worker_threads";

if (isMainThread && process.env.CHUNK_LOG) register(import.meta.url);

export async function load(url, context, nextLoad) {
  if (url.endsWith(".chunk.js")) appendFileSync(process.env.CHUNK_LOG, url + "\n");
  return nextLoad(url, context);
}
