/**
 * The backend contract's values as the process wire carries them and back: images as base64 PNG
 * or JPEG files (generated raw-RGB images encoded as PNG), and judgements read as the contract's
 * 1–5 scores (a distribution over 1..5 becomes its expected score, as every judge that reads a
 * distribution gives it).
 */
import { CRITERIA } from "../../../protocol/mod.ts";
import { encodePng } from "../../images/png-encode.ts";
import type { ImageInput, Judgement, LikertScores, PromptInput } from "../contract.ts";
import { ModelOutputError } from "../errors.ts";
import { expectedScore } from "../likert.ts";
import type { WireImage, WireJudgement, WirePrompt } from "./wire.ts";

/** An image as its file's bytes, base64. */
export function wireImage(image: ImageInput): WireImage {
  const bytes = image.format === "rgb8" ? encodePng(image.width, image.height, image.data) : image.data;
  return {
    format: image.format === "jpeg" ? "jpeg" : "png",
    width: image.width,
    height: image.height,
    data: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64"),
  };
}

/**
 * A prompt for the wire. Prompts of a batch often share images (k candidates of one prompt, many
 * judged items): each image object is encoded once per batch through `cache`.
 */
export function wirePrompt(prompt: PromptInput, cache: Map<ImageInput, WireImage>): WirePrompt {
  const images = prompt.images.map((img) => {
    let w = cache.get(img);
    if (!w) cache.set(img, (w = wireImage(img)));
    return w;
  });
  return { id: prompt.id, question: prompt.question, images };
}

/** A wire judgement as the contract's: Likert scores as given, a distribution as its expected score. */
export function judgementOf(j: WireJudgement): Judgement {
  if ("abstained" in j) return { abstained: j.abstained };
  if ("likert" in j) return { likert: j.likert };
  const likert = {} as LikertScores;
  for (const c of CRITERIA) {
    const score = expectedScore(
      j.distribution[c].map((p) => (p > 0 ? Math.log(p) : -Infinity)),
      1,
    );
    if (score === undefined) return { abstained: `the distribution for ${c} has no mass` };
    likert[c] = score;
  }
  return { likert };
}

/** Checks a batch reply's length against the request's. */
export function expectCount(what: string, got: number, want: number): void {
  if (got !== want) throw new ModelOutputError(`the peer program returned ${got} ${what} for ${want}`);
}
