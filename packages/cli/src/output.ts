// The reader of our output went away (`eddy dead-letters list | head -1`): what we write
// next goes nowhere, quietly, instead of the EPIPE stack Node prints for an unhandled
// stream error. The command itself goes on to its end and its exit code: a replay or a
// restore is not cut short halfway, a server keeps serving and stops in order, and
// `verify | head` still says by its status whether everything was sound.
export function quietOnClosedPipe(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on("error", (error: NodeJS.ErrnoException) => {
      if (error.code !== "EPIPE") throw error;
    });
  }
}
