// Structured JSON logs. Secrets are redacted wherever they could appear.
import pino, { type DestinationStream, type Logger } from "pino";

export const REDACT_PATHS = [
  "req.headers.authorization",
  "headers.authorization",
  "authorization",
  "*.apiKey",
  "*.oauthClientSecret",
  "*.oauthClientPrivateKey",
  "*.oauthAccessToken",
  "*.oauthRefreshToken",
  "*.accessToken",
  "*.refreshToken",
  "*.token",
  "*.codeVerifier",
  "apiKey",
  "oauthClientSecret",
  "oauthClientPrivateKey",
  "token",
];

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino({ level, redact: { paths: REDACT_PATHS, censor: "[redacted]" }, base: { service: "mcp-servers-api" } }, destination);
}
