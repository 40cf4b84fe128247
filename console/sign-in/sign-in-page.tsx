// Sign in by pasting a token: checked with GET /api/me, exchanged for the browser session cookie
// (POST /api/session, used by the connect page), and kept only in this tab's sessionStorage.
import { useMutation } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { api, fieldError, ok, ProblemError, session } from "../api.js";
import { TextField } from "../components/field.js";
import { Busy, Failure } from "../components/status.js";

export function SignInPage({ onSignedIn, expired }: { onSignedIn: (token: string) => void; expired?: unknown }) {
  const [token, setToken] = useState("");
  const signIn = useMutation({
    mutationFn: async (value: string) => {
      const client = api(value);
      const me = await ok(client.GET("/api/me"));
      // Gateway tokens cannot open a session; the console still works for what they may read.
      if (me.scope === "admin") await ok(client.POST("/api/session"));
      return me;
    },
    onSuccess: () => {
      session.setToken(token.trim());
      onSignedIn(token.trim());
    },
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    signIn.mutate(token.trim());
  };
  const refused = signIn.error instanceof ProblemError && signIn.error.status === 401;
  return (
    <section className="narrow">
      <h1>Sign in</h1>
      <p>Paste an API token (scope admin), e.g. one made with <code>npm run -s token -- create</code>. It is kept only in this browser tab.</p>
      {expired ? <Failure error={expired} title="Signed out" /> : null}
      <form onSubmit={submit}>
        <TextField
          label="Token"
          type="password"
          autoComplete="off"
          spellCheck={false}
          required
          value={token}
          onChange={(e) => setToken(e.target.value)}
          error={refused ? "This token was refused: it is unknown, revoked or expired." : fieldError(signIn.error, "/token")}
        />
        <button type="submit" className="primary" disabled={signIn.isPending || !token.trim()}>
          Sign in
        </button>
      </form>
      {signIn.isPending ? <Busy>Signing in…</Busy> : null}
      {signIn.error && !refused ? <Failure error={signIn.error} title="Could not sign in" /> : null}
    </section>
  );
}
