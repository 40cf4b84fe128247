// A real server process (server/main.ts under tsx) on an ephemeral loopback port, for the
// tests that need several processes on one store. Resolves with its base URL.
import { spawn, type ChildProcess } from "node:child_process";

export function spawnServerProcess(cwd: string, env: NodeJS.ProcessEnv, processes: ChildProcess[]): Promise<string> {
  const child = spawn(process.execPath, ["--import", "tsx", "server/main.ts"], {
    cwd,
    env: { ...env, PORT: "0", HOST: "127.0.0.1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  processes.push(child);
  return new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`server did not start: ${out}`)), 30_000);
    child.stderr!.on("data", (chunk) => process.stderr.write(`[server ${child.pid}] ${chunk}`));
    child.stdout!.on("data", (chunk) => {
      out += chunk;
      const match = /listening on (http:\/\/\S+)/.exec(out);
      if (match) {
        clearTimeout(timer);
        resolve(match[1].replace("localhost", "127.0.0.1"));
      }
    });
    child.on("exit", (code) => reject(new Error(`server exited with ${code}: ${out}`)));
  });
}
