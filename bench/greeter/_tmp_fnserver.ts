import { createEndpoint, serve } from "@eddy/sdk";
import { greeter } from "./functions.ts";

const server = await serve(createEndpoint([greeter]), { port: 8778 });
console.log("fn", server.url);
