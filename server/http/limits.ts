// Limits of the HTTP server itself, known before the app is built (server/main.ts listens first).

// Room for the OAuth callback's longest valid query once percent-encoded (Node's default is 16 KiB).
export const MAX_HEADER_BYTES = 64 * 1024;
