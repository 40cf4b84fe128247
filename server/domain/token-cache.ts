// Token checks without a query per request: a token found active is trusted for
// TOKEN_CACHE_MS, so a revocation reaches every process within that delay (at most 1 s).
// Unknown and revoked tokens are never cached: each such request asks the store again.
import type { TokenRecord, TokenRepo } from "../data/token-repo.js";

export const TOKEN_CACHE_MS = 1000;
const MAX_ENTRIES = 10_000;

export function cacheTokenLookups(repo: TokenRepo, ttlMs = TOKEN_CACHE_MS, now: () => number = Date.now): TokenRepo {
  // The lookup itself is cached, so concurrent requests with one token share one query.
  const cache = new Map<string, { lookup: Promise<TokenRecord | null>; expires: number }>();
  return {
    ...repo,
    findActiveByHash(tokenHash: string): Promise<TokenRecord | null> {
      const t = now();
      const hit = cache.get(tokenHash);
      if (hit && hit.expires > t) return hit.lookup;
      if (cache.size >= MAX_ENTRIES) {
        for (const [key, entry] of cache) if (entry.expires <= t) cache.delete(key);
        if (cache.size >= MAX_ENTRIES) cache.delete(cache.keys().next().value!);
      }
      const lookup = repo.findActiveByHash(tokenHash);
      cache.set(tokenHash, { lookup, expires: t + ttlMs });
      const forget = () => cache.get(tokenHash)?.lookup === lookup && cache.delete(tokenHash);
      lookup.then((record) => record ?? forget(), forget);
      return lookup;
    },
    async revoke(id: string, at: string): Promise<boolean> {
      const revoked = await repo.revoke(id, at);
      for (const [key, entry] of cache) if ((await entry.lookup.catch(() => null))?.id === id) cache.delete(key);
      return revoked;
    },
  };
}
