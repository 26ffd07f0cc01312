/** The PoP protocol: the contract every actor and coordinator speaks. */
export * from "./version.ts";
export * from "./errors.ts";
export * from "./schemas.ts";
export * from "./messages.ts";
export * from "./codec.ts";
export * from "./subjects.ts";
export * from "./envelope.ts";
export * from "./server.ts";
export * from "./topology.ts";
export * from "./publish.ts";
export * from "./admit.ts";
export * from "./inbox.ts";
export * from "./read.ts";
export * from "./state.ts";
export * from "./records.ts";
export * from "./timeout.ts";
export * from "./blobs.ts";
