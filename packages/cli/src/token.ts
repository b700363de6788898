// The bearer token of a runtime's HTTP endpoints, from --token-file or EDDY_TOKEN: the
// file wins, so a token on disk is never shadowed by a stray environment variable.
import { readFileSync } from "node:fs";
import { UsageError } from "./usage.ts";

export function readToken(tokenFile: string | undefined): string | undefined {
  if (tokenFile !== undefined) {
    let text: string;
    try {
      text = readFileSync(tokenFile, "utf8");
    } catch (error) {
      throw new UsageError(`--token-file ${tokenFile}: ${(error as Error).message}`);
    }
    const token = text.trim();
    if (token === "") throw new UsageError(`--token-file ${tokenFile} is empty`);
    return token;
  }
  const fromEnv = process.env.EDDY_TOKEN?.trim();
  return fromEnv === undefined || fromEnv === "" ? undefined : fromEnv;
}
