// Who is signed in and which workspace the pages show.
import { createContext, useContext } from "react";
import type { components } from "../client/index.js";

export interface ConsoleContext {
  me: components["schemas"]["Me"];
  workspace: string;
  setWorkspace(ws: string): void;
}

export const Ctx = createContext<ConsoleContext | null>(null);

export function useConsole(): ConsoleContext {
  const ctx = useContext(Ctx);
  if (!ctx) throw new Error("useConsole outside the signed-in console");
  return ctx;
}
