import { describe, expect, it } from "vitest";
import { Pipeline } from "../../actors/pipeline.ts";

describe("Pipeline", () => {
  it("starts at most `depth` pieces of work at once and hands out their results", async () => {
    const p = new Pipeline(2);
    const release: (() => void)[] = [];
    let running = 0;
    let most = 0;
    const work = (i: number) => async () => {
      running++;
      most = Math.max(most, running);
      await new Promise<void>((r) => release.push(r));
      running--;
      return i;
    };
    const first = await p.start(work(1));
    const second = await p.start(work(2));
    let thirdStarted = false;
    const third = p.start(work(3)).then((s) => ((thirdStarted = true), s));
    await new Promise((r) => setTimeout(r, 20));
    expect(thirdStarted).toBe(false); // waits for a place: the caller is held back
    release.shift()!();
    expect(await first.result).toBe(1);
    const t = await third;
    expect(thirdStarted).toBe(true);
    release.splice(0).forEach((r) => r());
    await new Promise((r) => setTimeout(r, 0));
    release.splice(0).forEach((r) => r());
    expect(await second.result).toBe(2);
    expect(await t.result).toBe(3);
    expect(most).toBe(2);
  });

  it("frees the place of work that fails", async () => {
    const p = new Pipeline(1);
    const failed = await p.start(async () => {
      throw new Error("model gone");
    });
    await expect(failed.result).rejects.toThrow("model gone");
    const next = await p.start(async () => "ok");
    expect(await next.result).toBe("ok");
  });
});
