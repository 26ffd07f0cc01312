/**
 * A preference pair as TRL's conversational vision record (DPOTrainer's format, which LLaVA-style
 * trainers read): `prompt` a user turn with one `{"type":"image"}` per image then the question,
 * `chosen`/`rejected` assistant turns, `images` the image paths. The one place this shape is built.
 */
export function trlPreferenceRecord(question: string, chosen: string, rejected: string, imagePaths: string[]) {
  return {
    prompt: [{ role: "user", content: [...imagePaths.map(() => ({ type: "image" })), { type: "text", text: question }] }],
    chosen: [{ role: "assistant", content: [{ type: "text", text: chosen }] }],
    rejected: [{ role: "assistant", content: [{ type: "text", text: rejected }] }],
    images: imagePaths,
  };
}
