// The browser console, built by `npm run build` (Vite) into dist/console-app and served here:
// GET / redirects to /console; /console/assets/* are the hashed files; every other /console path
// is the single page (its router picks the view), under a CSP that allows no inline script.
import { existsSync, readFileSync, statSync } from "node:fs";
import { extname, join, normalize, sep } from "node:path";
import { Router, type Response } from "express";
import { fromRoot } from "../paths.js";

/** Only files of this origin; fetches only to this origin; no inline script or style, no framing. */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".json": "application/json; charset=utf-8",
};

// Run from dist/ (npm start) the build is console-app/; from the checkout (tsx, tests) it is dist/console-app/.
const CANDIDATES = ["console-app/", "dist/console-app/"].map(fromRoot);

function buildDir(): string | null {
  return CANDIDATES.find((dir) => existsSync(join(dir, "index.html"))) ?? null;
}

function security(res: Response) {
  res.set({ "Content-Security-Policy": CONSOLE_CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY" });
}

export function consoleRouter(): Router {
  const router = Router();
  router.get("/", (_req, res) => res.redirect(302, "/console"));
  router.get(["/console", "/console/*path"], (req, res) => {
    security(res);
    const dir = buildDir();
    if (!dir) {
      res.status(503).type("text/plain; charset=utf-8").send("The console is not built: run `npm run build`.\n");
      return;
    }
    const rel = req.path.replace(/^\/console\/?/, "");
    const file = normalize(join(dir, rel));
    // A path with a file extension names an asset: it exists in the build or is a 404 (never the page).
    if (rel && extname(rel)) {
      if (!file.startsWith(dir.endsWith(sep) ? dir : dir + sep) || !existsSync(file) || !statSync(file).isFile()) {
        res.status(404).type("text/plain; charset=utf-8").send("Not found\n");
        return;
      }
      // Hashed asset names change with their content, so they may be cached for good.
      res.set("Cache-Control", rel.startsWith("assets/") ? "public, max-age=31536000, immutable" : "no-cache");
      res.type(TYPES[extname(file)] ?? "application/octet-stream").send(readFileSync(file));
      return;
    }
    res.set("Cache-Control", "no-cache");
    res.type(TYPES[".html"]).send(readFileSync(join(dir, "index.html")));
  });
  return router;
}
