// The official openai package against a real model in the kernel: the text the client hands
// the application must be the text the host reference computes with the same settings.
//
//   node openai_model_check.mjs BASE_URL CASES_JSON
//
// CASES_JSON is a list of {"name", "chat": bool, "prompt", "settings": {max_tokens, ...},
// "text", "completion_tokens", "finish_reason"} with the reference's answers. A chat case
// sends the prompt as one user message. Each case runs as a plain request and as a stream.
// The last line printed is a JSON report, {"checks": [{"name", "ok", "error"?}]}; the exit
// status is 0 only if every check passed.
import OpenAI from "openai";

const [baseURL, casesJson] = process.argv.slice(2);
if (!baseURL || !casesJson) {
  console.error("usage: node openai_model_check.mjs BASE_URL CASES_JSON");
  process.exit(2);
}
const client = new OpenAI({ baseURL, apiKey: "none", maxRetries: 0, timeout: 300000 });
const checks = [];

function expect(condition, message) {
  if (!condition) throw new Error(message);
}

async function check(name, body) {
  try {
    await body();
    checks.push({ name, ok: true });
  } catch (error) {
    checks.push({ name, ok: false, error: String(error && error.stack ? error.stack : error) });
  }
}

function request(testCase, model, stream) {
  const common = { model, ...testCase.settings, stream };
  return testCase.chat
    ? client.chat.completions.create({ ...common,
                                       messages: [{ role: "user", content: testCase.prompt }] })
    : client.completions.create({ ...common, prompt: testCase.prompt });
}

function expectAnswer(testCase, text, usage, finish) {
  expect(text === testCase.text, `the client got ${JSON.stringify(text)}, the host reference ` +
    `wrote ${JSON.stringify(testCase.text)}`);
  expect(finish === testCase.finish_reason,
    `finish_reason ${finish}, the reference's is ${testCase.finish_reason}`);
  expect(usage && usage.completion_tokens === testCase.completion_tokens,
    `usage ${JSON.stringify(usage)}; the reference generated ${testCase.completion_tokens} tokens`);
}

let model = "ringzero";
await check("models.list", async () => {
  const page = await client.models.list();
  expect(page.data.length >= 1 && typeof page.data[0].id === "string", "no model listed");
  model = page.data[0].id;
});

for (const testCase of JSON.parse(casesJson)) {
  await check(testCase.name, async () => {
    const answer = await request(testCase, model, false);
    const choice = answer.choices[0];
    expectAnswer(testCase, testCase.chat ? choice.message.content : choice.text, answer.usage,
                 choice.finish_reason);
  });
  await check(`${testCase.name}, streamed`, async () => {
    let text = "";
    let finish = null;
    let usage = null;
    for await (const chunk of await request(testCase, model, true)) {
      const choice = chunk.choices[0];
      text += (testCase.chat ? choice.delta.content : choice.text) ?? "";
      finish = choice.finish_reason ?? finish;
      usage = chunk.usage ?? usage;
    }
    expectAnswer(testCase, text, usage, finish);
  });
}

const failed = checks.filter((c) => !c.ok).length;
console.log(JSON.stringify({ checks }));
process.exit(failed ? 1 : 0);
