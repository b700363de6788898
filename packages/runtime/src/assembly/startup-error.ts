// The one error a start reports as a line for the user: whatever Eddy needs and does not find
// (a taken port, an unreadable file, a state directory in use), said in full with where it
// was asked for. Anything else that escapes a start is a bug and keeps its stack.

/** Eddy cannot start, for a reason the message gives in full (a caller prints it, not a stack). */
export class StartupError extends Error {
  override name = "StartupError";
}
