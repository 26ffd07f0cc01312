/**
 * Keys of the KV buckets and object names of the object store. Actors and the coordinator agree
 * on these, so they are part of the contract. Every key starts with the experiment.
 */
import { checkName as n } from "./subjects.ts";

/** Keys in the state bucket. */
export const stateKeys = {
  config: (exp: string) => `${n(exp, "experiment")}.config`,
  progress: (exp: string) => `${n(exp, "experiment")}.progress`,
  iteration: (exp: string, iteration: number) => `${n(exp, "experiment")}.iter.${iteration}`,
  /** The coordinator's lease (protocol/fence.ts): who leads and the fencing tokens. */
  lease: (exp: string) => `${n(exp, "experiment")}.lease`,
  model: (exp: string, peer: string) => `${n(exp, "experiment")}.model.${n(peer, "peer")}`,
  /** Wildcard for every iteration record of an experiment. */
  iterations: (exp: string) => `${n(exp, "experiment")}.iter.*`,
  /** Wildcard for every key of an experiment. */
  all: (exp: string) => `${n(exp, "experiment")}.>`,
};

/** Keys in the membership bucket: one per process serving a peer. */
export const memberKeys = {
  instance: (exp: string, peer: string, instance: string) => `${n(exp, "experiment")}.${n(peer, "peer")}.${n(instance, "instance")}`,
  /** Wildcard for every process of one peer. */
  ofPeer: (exp: string, peer: string) => `${n(exp, "experiment")}.${n(peer, "peer")}.*`,
  /** Watch filter for every member of an experiment. */
  all: (exp: string) => `${n(exp, "experiment")}.>`,
};

/** Object names in the object store. Images are named by their content hash. */
export const objectNames = {
  image: (hash: string) => hash,
  model: (exp: string, peer: string, version: string) => `model/${n(exp, "experiment")}/${n(peer, "peer")}/${version}`,
  pool: (name: string) => `pool/${n(name, "pool")}`,
  /** One chunk of a chunked pool (protocol/pool.ts). */
  poolChunk: (name: string, chunk: number) => `pool/${n(name, "pool")}/${chunk}`,
};
