/**
 * Keys of the KV buckets and object names of the object store. Actors and the coordinator agree
 * on these, so they are part of the contract. Every key starts with the experiment.
 */
import { NAME_PATTERN } from "./schemas.ts";
import { SubjectError } from "./errors.ts";

function n(value: string, what: string): string {
  if (!NAME_PATTERN.test(value)) throw new SubjectError(`${what} '${value}' is not a valid name`);
  return value;
}

/** Keys in the state bucket. */
export const stateKeys = {
  config: (exp: string) => `${n(exp, "experiment")}.config`,
  progress: (exp: string) => `${n(exp, "experiment")}.progress`,
  iteration: (exp: string, iteration: number) => `${n(exp, "experiment")}.iter.${iteration}`,
  model: (exp: string, peer: string) => `${n(exp, "experiment")}.model.${n(peer, "peer")}`,
};

/** Keys in the membership bucket: one per process serving a peer. */
export const memberKeys = {
  instance: (exp: string, peer: string, instance: string) => `${n(exp, "experiment")}.${n(peer, "peer")}.${n(instance, "instance")}`,
  /** Watch filter for every member of an experiment. */
  all: (exp: string) => `${n(exp, "experiment")}.>`,
};

/** Object names in the object store. Images are named by their content hash. */
export const objectNames = {
  image: (hash: string) => hash,
  model: (exp: string, peer: string, version: string) => `model/${n(exp, "experiment")}/${n(peer, "peer")}/${version}`,
  pool: (name: string) => `pool/${n(name, "pool")}`,
};
