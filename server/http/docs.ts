// Reference docs and the spec itself, with no token: GET /docs renders the live spec with
// Redoc's standalone bundle, served from node_modules so the page needs nothing off the machine.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { Router, type Response } from "express";
import { fromRoot } from "../paths.js";

// Redoc 2 always shows a sidebar logo fetched from its CDN, with no option to turn it off;
// an empty src makes the image fail without a request, and Redoc then hides it.
// Read at the first request for it: the bundle is about 1 MB, not worth reading at every start.
let redocJs: string | undefined;
const redoc = () =>
  (redocJs ??= readFileSync(createRequire(import.meta.url).resolve("redoc/bundles/redoc.standalone.js"), "utf8").replaceAll("https://cdn.redoc.ly/redoc/logo-mini.svg", ""));
const specYaml = readFileSync(fromRoot("openapi.yaml"), "utf8");
const specJson = readFileSync(fromRoot("generated/openapi.json"), "utf8");
const title: string = JSON.parse(specJson).info?.title ?? "API";

/** Only this origin; inline styles and a blob: worker because Redoc injects its CSS and runs search in a worker. */
export const DOCS_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "worker-src blob:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

// Redoc reads its options from the element's attributes and starts itself, so the page needs no inline script.
// The data: icon stops browsers asking for /favicon.ico, which would only 404.
const docsHtml = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>${escapeHtml(title)} reference</title>
</head>
<body style="margin:0">
<redoc spec-url="/openapi.json"></redoc>
<script src="/docs/redoc.standalone.js"></script>
</body>
</html>
`;

function send(res: Response, type: string, body: string) {
  res.set({ "Content-Type": type, "X-Content-Type-Options": "nosniff" }).send(body);
}

export function docsRouter(): Router {
  const router = Router();
  router.get("/docs", (_req, res) => {
    res.set("Content-Security-Policy", DOCS_CSP);
    send(res, "text/html; charset=utf-8", docsHtml);
  });
  router.get("/docs/redoc.standalone.js", (_req, res) => send(res, "application/javascript; charset=utf-8", redoc()));
  router.get("/openapi.yaml", (_req, res) => send(res, "application/yaml; charset=utf-8", specYaml));
  router.get("/openapi.json", (_req, res) => send(res, "application/json; charset=utf-8", specJson));
  return router;
}
