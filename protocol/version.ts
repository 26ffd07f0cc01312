/** Version of the wire protocol. Bumped on any incompatible change of a message schema. */
export const PROTOCOL_VERSION = 2 as const;
