// bench/greeter's greeter as a module a partition thread imports (greeter.ts).
import { greeter } from "../greeter/functions.ts";

export const functions = [greeter];
