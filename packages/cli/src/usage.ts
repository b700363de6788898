/** A command line the user got wrong: printed with the usage, exit code 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** A command that could not do its job for a reason outside the command line: printed without a stack, exit code 1. */
export class CommandError extends Error {
  override name = "CommandError";
}
